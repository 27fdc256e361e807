"""A replay's running total keeps counts and refusal reasons, never the notices and letters themselves: it stays
the same size however many messages the run reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

from safety_monitor.adapters.clock import FixedClock
from safety_monitor.bootstrap import bootstrap
from safety_monitor.demo import generate_trial, write_jsonl
from safety_monitor.settings import Settings
from streams.embedded import RunSummary, replay_file
from tests.conftest import ROOT
from tests.workspace import NOW


def test_a_replay_summary_counts_what_it_wrote_without_keeping_it(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/trial.db",
        rules_dir=ROOT / "rules",
        templates_dir=ROOT / "templates",
        mail_capture_dir=tmp_path / "mail",
    )
    file = tmp_path / "trial.jsonl"
    write_jsonl(file, generate_trial(subjects=20, days=60).lines)

    async def replay() -> RunSummary:
        app = bootstrap(settings, clock=FixedClock(NOW))
        try:
            await app.start()
            return await replay_file(app, file, batch_size=50)
        finally:
            await app.close()

    summary = asyncio.run(replay())
    outcome = summary.outcome
    assert summary.batches > 1
    assert outcome.notices > 0 and outcome.dead_lettered > 0  # the demo trial carries malformed lines
    assert len(outcome.dead_letter_reasons) == outcome.dead_lettered
    assert outcome.written_notices == [] and outcome.dead_letters == []
