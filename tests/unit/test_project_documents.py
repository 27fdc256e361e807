"""The project explains itself and its README runs (issue 17): docs/ cited, README blocks walked, tests' own
PostgreSQL."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.conftest import ROOT


def walkthrough() -> ModuleType:
    spec = importlib.util.spec_from_file_location("readme_walkthrough", ROOT / "scripts" / "readme_walkthrough.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["readme_walkthrough"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    suffixes = {".py", ".md", ".yaml", ".yml", ".j2", ".toml", ".sh", ".cfg", ".ini", ""}
    return [ROOT / n for n in listed.split() if Path(n).suffix in suffixes and (ROOT / n).is_file()]


# 6. The repository's own documentation, and no citation of a file it does not hold.


def test_nothing_cites_a_design_file_outside_the_repository() -> None:
    offenders = []
    for path in tracked_text_files():
        if path.name == "test_project_documents.py":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if "DESIGN.md" in text or "../shared" in text:
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_docs_pages_cover_what_they_are_cited_for() -> None:
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    clinical = (ROOT / "docs" / "clinical-decisions.md").read_text()
    for heading in (
        "## Layers",
        "## The runtime contract",
        "## Wire format",
        "## Rules and routing",
        "## The two runtimes",
    ):
        assert heading in architecture
    for heading in (
        "## The trial's signals",
        "## Grading conventions",
        "## Incidence and treatment-emergent AEs",
        "## The expedited-reporting clock",
        "## Follow-ups and corrections",
    ):
        assert heading in clinical
    # every `docs/NAME.md` a file names exists, and a quoted section it names is a heading there
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for page, section in re.findall(r'docs/([a-z-]+\.md)(?:,? \(?"([^"]+)")?', text):
            target = ROOT / "docs" / page
            assert target.is_file(), f"{path}: docs/{page}"
            section = " ".join(section.split())
            if section:
                assert f"## {section}" in target.read_text(), f"{path}: docs/{page} has no section {section!r}"


# 7. The README's commands run: the walk-through takes its script from README.md itself.


def test_the_walkthrough_runs_every_sh_block_except_those_marked_skip() -> None:
    module = walkthrough()
    readme = (
        "intro\n```sh\necho one\n```\n"
        "<!-- walkthrough: skip (needs a real SMTP server) -->\n```sh\nsend-mail\n```\n"
        "```yaml\nnot: shell\n```\n"
        "```sh\necho two\necho three\n```\n"
    )
    blocks = module.sh_blocks(readme)
    assert [(b.line, b.text, b.skip_reason) for b in blocks] == [
        (2, "echo one", None),
        (6, "send-mail", "needs a real SMTP server"),
        (12, "echo two\necho three", None),
    ]
    script = module.script([b for b in blocks if b.skip_reason is None])
    assert script.startswith("set -euo pipefail\n") and "send-mail" not in script
    assert script.index("echo one") < script.index("README.md:12") < script.index("echo two")


def test_the_readme_names_only_commands_and_files_that_exist() -> None:
    module = walkthrough()
    blocks = module.sh_blocks((ROOT / "README.md").read_text())
    runnable = [b for b in blocks if b.skip_reason is None]
    assert len(runnable) >= 3
    every = "\n".join(b.text for b in blocks)
    assert not re.search(r"(^|\s)safety-monitor ", every, re.MULTILINE), "call .venv/bin/safety-monitor"
    assert "site-export.jsonl" not in every and "ALERT_RECIPIENTS=" not in every
    help_text = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "safety-monitor"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    listed = help_text.split("Commands:")[1]
    commands = set(re.findall(r"^  ([a-z][a-z-]*)\s", listed, re.MULTILINE))
    table = (ROOT / "README.md").read_text().split("## Commands")[1].split("## Safety rules")[0]
    for command in commands:
        assert f"`safety-monitor {command}" in table or f"`{command}`" in table, command


def test_make_test_runs_the_walkthrough() -> None:
    makefile = (ROOT / "Makefile").read_text()
    test_line = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "walkthrough" in test_line
    assert "scripts/readme_walkthrough.py" in makefile


# 8. The tests' PostgreSQL is their own: nothing rewrites the machine's configuration.


def test_no_script_rewrites_the_system_postgresql_configuration() -> None:
    for name in ("Makefile", "scripts/ensure-postgres.sh", "scripts/test-postgres.sh"):
        text = (ROOT / name).read_text()
        assert "/etc/postgresql" not in text and "pg_ctlcluster" not in text, name
    makefile = (ROOT / "Makefile").read_text()
    pytest_recipe = makefile.split("\npytest:")[1].split("\n\n")[0]
    assert "scripts/test-postgres.sh start" in pytest_recipe and "scripts/test-postgres.sh stop" in pytest_recipe
    assert "trap" in pytest_recipe and "5432" not in makefile


def test_the_private_cluster_starts_answers_and_is_removed(tmp_path: Path) -> None:
    import asyncio

    import asyncpg

    directory = tmp_path / "pg"
    script = str(ROOT / "scripts" / "test-postgres.sh")
    started = subprocess.run(["bash", script, "start", str(directory)], capture_output=True, text=True, timeout=120)
    try:
        assert started.returncode == 0, started.stderr
        line = started.stdout.strip().splitlines()[-1]
        assert line.startswith("SAFETY_MONITOR_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:")
        url = line.split("=", 1)[1]
        assert ":5432/" not in url

        async def ask() -> str:
            connection = await asyncpg.connect(url)
            try:
                return str(await connection.fetchval("select current_database()"))
            finally:
                await connection.close()

        assert asyncio.run(ask()) == "test"
        hba = (Path((directory / "datadir").read_text().strip()) / "pg_hba.conf").read_text()
        assert "trust" in hba  # its own file, inside the cluster's directory
    finally:
        stopped = subprocess.run(["bash", script, "stop", str(directory)], capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and not directory.exists()
