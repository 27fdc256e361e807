"""A new user's walk through README.md: in a copy of the repository, `make demo`, then every ```sh block in order.

The README's own code blocks are the script, so the documentation cannot drift from what runs. A block right after
a line `<!-- walkthrough: skip (REASON) -->` is left out (it needs a real SMTP server, a production cluster,
Docker...). All blocks run in one bash process (`set -euo pipefail`), so an `export` or a variable of one block
holds in the next, as in the terminal of someone following along; the first command that fails stops the walk and
names its block's line in README.md. Exit status: 0 when every block ran, 1 otherwise.

The copy holds the repository's files as they are now (tracked and untracked, not ignored: no var/, no .venv/), so
the developer's var/ is untouched. To keep the walk fast it reuses the repository's .venv (a symlink; the copy's
sources come first on PYTHONPATH) instead of installing a second one. Usage:
    python scripts/readme_walkthrough.py [--keep] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r"^<!--\s*walkthrough:\s*skip\s*\((?P<reason>.+)\)\s*-->$")
# The variables a user's shell may carry that would change what the README's commands do: the walk starts clean.
CONFIG_PREFIXES = ("DATABASE_", "MAIL_", "SMTP_", "KAFKA_", "SAFETY_MONITOR_", "WORKER_", "DIGEST_", "ALERT_")


@dataclass(frozen=True)
class Block:
    line: int  # where its fence opens in README.md
    text: str
    skip_reason: str | None


def sh_blocks(readme: str) -> list[Block]:
    """Every ```sh block of the README, with the skip reason of the marker line before it (if any)."""
    blocks: list[Block] = []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i
            body: list[str] = []
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise SystemExit(f"README.md:{start + 1}: a ```sh block is never closed")
            before = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
            marker = SKIP.match(before)
            blocks.append(Block(start + 1, "\n".join(body), marker.group("reason") if marker else None))
        i += 1
    return blocks


def copy_repository(target: Path) -> None:
    git = shutil.which("git") or "git"
    listed = subprocess.run(  # noqa: S603 - fixed arguments
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")


def clean_environment(copy: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONFIG_PREFIXES) and not k.endswith("_EMAILS")}
    env["PYTHONPATH"] = str(copy)
    env.pop("MAKEFLAGS", None)
    env.pop("MFLAGS", None)
    return env


def script(blocks: list[Block]) -> str:
    parts = ["set -euo pipefail"]
    for block in blocks:
        parts.append(f"printf '\\n$ # README.md:{block.line}\\n' >&2")
        parts.append(block.text)
    return "\n".join(parts) + "\n"


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> int:
    """Run in a process group of its own; whatever it left running in the background is stopped afterwards."""
    process = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)  # noqa: S603 - our own commands
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"walkthrough: timed out after {timeout:.0f} s", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the copy (its path is printed).")
    parser.add_argument("--timeout", type=float, default=600, help="Seconds for the whole walk.")
    args = parser.parse_args()
    blocks = sh_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    runnable = [b for b in blocks if b.skip_reason is None]
    for block in blocks:
        if block.skip_reason is not None:
            print(f"walkthrough: README.md:{block.line} skipped ({block.skip_reason})", file=sys.stderr)
    copy = Path(tempfile.mkdtemp(prefix="readme-walkthrough-"))
    started = time.monotonic()
    try:
        copy_repository(copy)
        env = clean_environment(copy)
        print(f"walkthrough: in {copy}: make demo, then {len(runnable)} README blocks", file=sys.stderr)
        # The copy shares the repository's installed .venv: make must not reinstall into it (-o: take as up to date).
        if run(["make", "-o", ".venv/.installed", "-o", ".venv/bin/python", "demo"], copy, env, args.timeout):
            print("walkthrough: `make demo` failed", file=sys.stderr)
            return 1
        (copy / "walkthrough.sh").write_text(script(runnable), encoding="utf-8")
        code = run(["bash", "walkthrough.sh"], copy, env, args.timeout)
        seconds = time.monotonic() - started
        if code:
            print(f"walkthrough: FAILED (exit {code}) in the README block named last above", file=sys.stderr)
            return 1
        print(f"walkthrough: OK, make demo and {len(runnable)} README blocks in {seconds:.0f} s", file=sys.stderr)
        return 0
    finally:
        if args.keep:
            print(f"walkthrough: copy kept at {copy}", file=sys.stderr)
        else:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
