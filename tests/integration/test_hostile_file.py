"""20,000 valid lines with every hostile kind spliced in three times: `replay` applies all 20,000 and
dead-letters exactly the hostile lines with short reasons; `serve` does the same and goes on with the next file.
(The rate kept on such a file is measured by bench/bench_hostile.py, not here.)"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from safety_monitor.demo import generate_load
from tests.cli_harness import invoke, use_embedded_defaults
from tests.conftest import SKELETON_RULES
from tests.factories import ae, subject_id
from tests.hostile import hostile_lines, spliced_file
from tests.integration.test_serve import Serve, drop, site, wait_until

__all__ = ["site"]

VALID = 20_000


def _counts(database: Path) -> tuple[int, int, list[str]]:
    db = sqlite3.connect(database)
    try:
        (applied,) = db.execute("SELECT count(*) FROM inbox").fetchone()
        (letters,) = db.execute("SELECT coalesce(sum(times_received), 0) FROM dead_letter").fetchone()
        reasons = [r for (r,) in db.execute("SELECT reason FROM dead_letter")]
    finally:
        db.close()
    return applied, letters, reasons


def test_replay_applies_every_valid_line_and_dead_letters_exactly_the_hostile_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_embedded_defaults(monkeypatch, tmp_path, SKELETON_RULES)
    hostile = spliced_file(tmp_path / "site.jsonl", list(generate_load(VALID)))
    assert hostile == 3 * len(hostile_lines("x"))
    result = invoke("replay", "--no-deliver", str(tmp_path / "site.jsonl"))
    applied, letters, reasons = _counts(tmp_path / "var" / "safety-monitor.db")
    assert (applied, letters) == (VALID, hostile), result.output
    assert max(len(r) for r in reasons) <= 400, max(reasons, key=len)[:500]
    kinds = " | ".join(reasons)
    for word in ("nested", "UTF-8", "record_version", "sent_at", "duplicate key", "AETOXGR", "control character"):
        assert word in kinds, word


def test_serve_processes_the_hostile_file_and_goes_on_with_the_next(site: tuple[Path, dict[str, str]]) -> None:
    workdir, env = site
    inbox = workdir / "inbox"
    inbox.mkdir()
    hostile = spliced_file(workdir / "staged.jsonl", list(generate_load(VALID)))
    (workdir / "staged.jsonl").rename(inbox / "site-a.jsonl")
    first = Serve(env, workdir, 1)
    try:
        wait_until(lambda: (inbox / "processed" / "site-a.jsonl").is_file(), "the hostile file is processed", 300)
        drop(inbox, "site-b.jsonl", [json.dumps(ae(subject_id(4000), "AE-1", "Haemoptysis", 2))])
        wait_until(lambda: (inbox / "processed" / "site-b.jsonl").is_file(), "the next file is processed")
    finally:
        assert first.stop() == 0, first.stderr()
    applied, letters, _ = _counts(workdir / "site.db")
    assert (applied, letters) == (VALID + 1, hostile)
    assert "site-a.jsonl: 20039 messages (20000 applied" in first.stdout(), first.stdout()
