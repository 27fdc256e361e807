"""Hot reload as a running process sees it: SIGHUP swaps in new rules; a broken file keeps the rules in force."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from pathlib import Path

from safety_monitor.bootstrap import bootstrap
from safety_monitor.service.reload import install_sighup_reload
from safety_monitor.settings import Settings
from tests.conftest import ROOT, SKELETON_RULES
from tests.factories import ae, inbound, subject_id
from tests.harness import run

EXTRA_RULE = """\
rules:
  - id: any-fatigue
    title: Any fatigue
    when: {kind: ae, terms: [Fatigue]}
    severity: info
"""


def app_over(rules: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = Settings.from_env(
        {},
        database_url=f"sqlite:///{tmp_path}/r.db",
        rules_dir=rules,
        templates_dir=ROOT / "templates",
        alert_recipients=("dsmb@example.org",),
    )
    return bootstrap(settings)


async def test_sighup_reloads_rules_into_the_running_pipeline(tmp_path: Path, now) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules"
    shutil.copytree(SKELETON_RULES, rules)
    app = app_over(rules, tmp_path)
    await app.start()
    try:
        holder = app.rules_holder()
        install_sighup_reload(holder)
        before = app.pipeline.ruleset.content_hash

        (rules / "extra.yaml").write_text(EXTRA_RULE)
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if app.pipeline.ruleset.content_hash != before:
                break
            await asyncio.sleep(0.01)
        assert app.pipeline.ruleset.by_id("any-fatigue") is not None
        outcome = await run(app.store, app.pipeline, now, inbound(ae(subject_id(1), "AE-1", "Fatigue", 1)))
        assert outcome.alerts_by_rule == {"any-fatigue": 1}

        good = app.pipeline.ruleset.content_hash
        (rules / "extra.yaml").write_text(EXTRA_RULE.replace("severity: info", "severity: urgent"))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if holder.last_error:
                break
            await asyncio.sleep(0.01)
        assert "severity 'urgent' is not one of" in holder.last_error
        assert app.pipeline.ruleset.content_hash == good  # the last good ruleset stays in force
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        await app.close()


def test_runtimes_schedule_the_sae_clock_with_the_notification_jobs(tmp_path: Path) -> None:
    app = app_over(ROOT / "rules", tmp_path)
    names = [job.name for job in app.scheduled_jobs()]
    assert names[0] == "sae-deadlines"
    assert len(names) == len(set(names)) >= 4
