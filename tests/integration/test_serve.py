"""`safety-monitor serve`, the embedded service: the real command as a subprocess on SQLite (inbox files in, mail
out, SIGHUP reload of routing, SIGTERM stop losing nothing), and the inbox mechanics in process."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from email import message_from_bytes, policy
from pathlib import Path
from typing import ClassVar

import pytest

from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.settings import Settings
from streams import embedded
from streams.embedded import InboxDirectory, ingest_file, run_source, watch_inbox
from tests.conftest import ROOT, SKELETON_RULES
from tests.factories import ae, subject_id

COMMAND = str(Path(sys.executable).with_name("safety-monitor"))

ROUTING = """\
receivers:
  medical-monitors: {email: [mm@example.org]}
  dsmb: {email: [dsmb@example.org]}
defaults:
  group_by: [study_id, subject_id]
  group_wait: 0s
  group_interval: 1m
  repeat_interval: 24h
route:
  receiver: medical-monitors
"""
TO_DSMB = ROUTING.replace("route:\n  receiver: medical-monitors", "route:\n  receiver: dsmb")


def wait_until(condition: Callable[[], object], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds:.0f} s: {what}")
        time.sleep(0.1)


def drop(inbox: Path, name: str, lines: list[str]) -> None:
    """What a site's exporter does: write under a name serve ignores, then rename into place."""
    partial = inbox / f".{name}.part"
    partial.write_text("".join(line + "\n" for line in lines))
    partial.rename(inbox / name)


def mail_to(mail_dir: Path) -> list[tuple[str, str]]:
    """(To, text) of each captured email."""
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(preferencelist=("plain",))
        found.append((str(message["To"]), body.get_content() if body is not None else ""))
    return found


class Serve:
    """One `safety-monitor serve` process with its output in files (read while it runs)."""

    started: ClassVar[list[subprocess.Popen[bytes]]] = []  # killed at teardown if a test fails before stopping them

    def __init__(self, env: dict[str, str], workdir: Path, run: int) -> None:
        self.out, self.err = workdir / f"serve-{run}.out", workdir / f"serve-{run}.err"
        with self.out.open("w") as stdout, self.err.open("w") as stderr:  # the child keeps its own copies
            self.process = subprocess.Popen(
                [COMMAND, "serve", "--pid-file", str(workdir / "serve.pid")],
                cwd=workdir,
                env=env,
                stdout=stdout,
                stderr=stderr,
            )
        Serve.started.append(self.process)
        wait_until(lambda: "serving:" in self.stdout() or self.process.poll() is not None, "serve starts")
        assert self.process.poll() is None, self.stderr()

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A site's working directory (rules with routing, inbox, mail capture) and the environment `serve` runs in."""
    rules = tmp_path / "rules"
    shutil.copytree(SKELETON_RULES, rules)
    (rules / "routing.yaml").write_text(ROUTING)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "MAIL_", "SMTP_", "SAFETY_MONITOR_", "ALERT_", "DIGEST_", "BATCH_"))
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path}/site.db",
        "SAFETY_MONITOR_RULES_DIR": str(rules),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
        "SAFETY_MONITOR_INBOX_DIR": str(tmp_path / "inbox"),
        "SAFETY_MONITOR_INBOX_POLL": "0.2",
        "MAIL_BACKEND": "capture",
        "MAIL_CAPTURE_DIR": str(tmp_path / "mail"),
        "BATCH_SIZE": "500",
    }
    yield tmp_path, env
    while Serve.started:
        process = Serve.started.pop()
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_ingests_the_inbox_mails_reloads_routing_on_sighup_and_stops_cleanly(
    site: tuple[Path, dict[str, str]],
) -> None:
    workdir, env = site
    inbox, mail_dir, rules = workdir / "inbox", workdir / "mail", workdir / "rules"
    first = Serve(env, workdir, 1)
    pid_file = workdir / "serve.pid"
    assert int(pid_file.read_text()) == first.process.pid

    # A file with an alert, a malformed line and an exact duplicate: processed as `replay` would.
    s1 = json.dumps(ae(subject_id(1), "AE-1", "Haemoptysis", 2))
    (inbox / "ignored.jsonl.part").write_text(s1 + "\n")  # not a *.jsonl name: never taken
    drop(inbox, "site-a.jsonl", [s1, "{not json", s1])
    wait_until(lambda: (inbox / "processed" / "site-a.jsonl").is_file(), "site-a.jsonl processed")
    # The file's line is printed once it has been moved (the line names where to): wait for it, do not race it.
    counts = "site-a.jsonl: 3 messages (1 applied, 1 duplicates, 0 stale follow-ups, 1 dead-lettered)"
    wait_until(lambda: counts in first.stdout(), "site-a.jsonl's counts printed")
    wait_until(lambda: len(mail_to(mail_dir)) == 1, "the haemoptysis alert is mailed by the scheduler")
    assert mail_to(mail_dir)[0][0] == "mm@example.org" and subject_id(1) in mail_to(mail_dir)[0][1]

    # Routing changed, then `rules reload` (checks, then SIGHUP): the next alert goes to the new receiver.
    (rules / "routing.yaml").write_text(TO_DSMB)
    reload = subprocess.run(
        [COMMAND, "rules", "reload", "--pid-file", str(pid_file)], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert reload.returncode == 0, reload.stderr
    routing_hash = hashlib.sha256(TO_DSMB.encode()).hexdigest()[:12]
    assert f"routing {routing_hash}" in reload.stdout
    wait_until(lambda: f"routing={routing_hash} changed=True" in first.stderr(), "the reload is logged")
    drop(inbox, "site-b.jsonl", [json.dumps(ae(subject_id(2), "AE-1", "Haemoptysis", 3))])
    wait_until(lambda: len(mail_to(mail_dir)) == 2, "the second alert is mailed")
    assert [to for to, text in mail_to(mail_dir) if subject_id(2) in text] == ["dsmb@example.org"]

    # A broken routing file: `rules reload` refuses with file and line; a bare SIGHUP keeps the last good pair.
    (rules / "routing.yaml").write_text(TO_DSMB.replace("group_wait: 0s", "group_wait: soon"))
    refused = subprocess.run(
        [COMMAND, "rules", "reload", "--pid-file", str(pid_file)], cwd=workdir, env=env, capture_output=True, text=True
    )
    assert refused.returncode == 1 and f"{rules / 'routing.yaml'}, line 6" in refused.stderr
    first.process.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reload refused" in first.stderr(), "the refusal is logged")
    assert "keeping ruleset=" in first.stderr() and f"routing={routing_hash}" in first.stderr()
    drop(inbox, "site-c.jsonl", [json.dumps(ae(subject_id(3), "AE-1", "Haemoptysis", 3))])
    wait_until(lambda: len(mail_to(mail_dir)) == 3, "the third alert is mailed")
    assert [to for to, text in mail_to(mail_dir) if subject_id(3) in text] == ["dsmb@example.org"]

    # A large file and SIGTERM while it is processed: exit 0, what was committed stays, the rest waits.
    big = [json.dumps(ae(subject_id(100 + n), "AE-1", "Fatigue", 1)) for n in range(8000)]
    drop(inbox, "site-d.jsonl", big)
    time.sleep(0.5)
    assert first.stop() == 0, first.stderr()
    assert "stopped: the batch in hand was committed" in first.stdout()
    assert not pid_file.exists()

    # Started again, it finishes the file (what was committed before comes back as duplicates): nothing lost.
    (rules / "routing.yaml").write_text(TO_DSMB)
    second = Serve(env, workdir, 2)
    wait_until(lambda: (inbox / "processed" / "site-d.jsonl").is_file(), "site-d.jsonl processed", 180)
    assert second.stop() == 0, second.stderr()
    db = sqlite3.connect(workdir / "site.db")
    try:
        (received,) = db.execute("SELECT count(*) FROM inbox").fetchone()
        (dead,) = db.execute("SELECT count(*) FROM dead_letter").fetchone()
    finally:
        db.close()
    assert received == 3 + len(big) and dead == 1
    assert sorted(p.name for p in inbox.iterdir()) == ["ignored.jsonl.part", "processed", "rejected"]
    assert len(mail_to(mail_dir)) == 3  # grade 1 fatigue raises nothing under these rules


def test_serve_refuses_to_start_beside_a_running_one(site: tuple[Path, dict[str, str]]) -> None:
    workdir, env = site
    first = Serve(env, workdir, 1)
    try:
        again = subprocess.run(
            [COMMAND, "serve", "--pid-file", str(workdir / "serve.pid")],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert again.returncode == 1 and f"another serve (pid {first.process.pid})" in again.stderr
    finally:
        assert first.stop() == 0


# The inbox mechanics in process (fast): stop semantics, rejection, what is taken and in which order.


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[App]:
    settings = Settings.from_env(
        {},
        database_url=f"sqlite:///{tmp_path}/e.db",
        rules_dir=SKELETON_RULES,
        templates_dir=ROOT / "templates",
        alert_recipients=("dsmb@example.org",),
        batch_size=10,
    )
    app = bootstrap(settings)
    await app.start()
    try:
        yield app
    finally:
        await app.close()


async def test_a_stop_finishes_the_batch_in_hand_and_reads_no_further(app: App) -> None:
    lines = [json.dumps(ae(subject_id(n), "AE-1", "Fatigue", 1)) for n in range(1, 36)]
    stop = asyncio.Event()

    async def source() -> AsyncIterator[tuple[str, str]]:
        for number, line in enumerate(lines, start=1):
            if number == 16:
                stop.set()  # SIGTERM while the first batch (lines 1-10) is being handled
            yield line, f"f:{number}"

    summary = await run_source(app, source(), stop=stop)
    assert not summary.complete and summary.outcome.applied == 10 and summary.acknowledged_through == "f:10"
    again = await run_source(app, ((line, f"f:{n}") for n, line in enumerate(lines, start=1)))
    assert again.complete and (again.outcome.duplicates, again.outcome.applied) == (10, 25)


async def test_a_stopped_file_stays_in_the_inbox_and_an_unreadable_one_is_rejected_with_its_reason(
    app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = InboxDirectory(tmp_path / "inbox")
    inbox.prepare()
    drop(inbox.root, "a.jsonl", [json.dumps(ae(subject_id(1), "AE-1", "Fatigue", 1))])
    stopped = asyncio.Event()
    stopped.set()
    left = await ingest_file(app, inbox, inbox.root / "a.jsonl", stop=stopped)
    assert left.moved_to is None and (inbox.root / "a.jsonl").is_file()
    done = await ingest_file(app, inbox, inbox.root / "a.jsonl")
    assert done.moved_to == inbox.processed / "a.jsonl" and done.summary is not None
    drop(inbox.root, "a.jsonl", [json.dumps(ae(subject_id(1), "AE-1", "Fatigue", 1))])  # the same name again
    assert (await ingest_file(app, inbox, inbox.root / "a.jsonl")).moved_to == inbox.processed / "a.1.jsonl"

    def failing_disk(path: Path) -> Iterator[tuple[str, str]]:
        raise OSError(errno.EIO, "Input/output error")
        yield  # pragma: no cover

    monkeypatch.setattr(embedded, "file_source", failing_disk)
    drop(inbox.root, "b.jsonl", ["{}"])
    rejected = await ingest_file(app, inbox, inbox.root / "b.jsonl")
    assert rejected.summary is None and rejected.moved_to == inbox.rejected / "b.jsonl"
    reason = (inbox.rejected / "b.jsonl.reason").read_text()
    assert reason.rstrip().endswith("cannot read b.jsonl: Input/output error")


async def test_the_inbox_takes_complete_jsonl_files_oldest_first(app: App, tmp_path: Path) -> None:
    inbox = InboxDirectory(tmp_path / "inbox")
    inbox.prepare()
    for name, age in (("late.jsonl", 0), ("early.jsonl", 100), (".hidden.jsonl", 200), ("x.jsonl.part", 300)):
        (inbox.root / name).write_text(json.dumps(ae(subject_id(1), "AE-1", "Fatigue", 1, msg_id=name)) + "\n")
        os.utime(inbox.root / name, (time.time() - age, time.time() - age))
    assert [p.name for p in inbox.waiting()] == ["early.jsonl", "late.jsonl"]

    stop, seen = asyncio.Event(), []

    def note(done: embedded.InboxFile) -> None:
        seen.append(done.name)
        if len(seen) == 2:
            stop.set()

    await asyncio.wait_for(watch_inbox(app, inbox, stop, poll=0.05, on_file=note), timeout=30)
    assert seen == ["early.jsonl", "late.jsonl"]
    assert sorted(p.name for p in inbox.root.iterdir()) == [".hidden.jsonl", "processed", "rejected", "x.jsonl.part"]
