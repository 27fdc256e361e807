"""Benchmark of the review workspace: a SQLite database holding N synthetic messages (default 100,000) replayed
through the pipeline with the trial's catalogue, topped up to A alerts (default 10,000); then the p50 / p95 of
`/alerts`, `/api/v1/alerts` and `/subjects/{id}`, served by the real app in process (Starlette's TestClient:
routing, the policy dependency with its session or token look-up, the queries, the templates)."""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from safety_monitor.adapters.passwords import Argon2Hasher
from safety_monitor.bootstrap import App, bootstrap
from safety_monitor.demo import generate_load, write_jsonl
from safety_monitor.domain.access import Role
from safety_monitor.domain.alerts import Alert, AlertChange, AlertStatus, ChangeKind
from safety_monitor.service.accounts import add_user, issue_token
from safety_monitor.settings import Settings
from safety_monitor.web.app import create_app
from streams.embedded import replay_file

TARGET_P95_MS = 200.0
PASSWORD = "benchmark password"
SEVERITIES = ("critical", "high", "medium", "info")


async def fill(app: App, path: Path, alerts: int) -> tuple[int, int, list[str]]:
    """Replay the messages, then add alerts (spread over the replayed subjects) until there are `alerts`."""
    await app.start()
    summary = await replay_file(app, path)
    async with app.store() as uow:
        raised = sum((await uow.alerts.count_by_rule()).values())
        subjects = sorted(key[1] for key in await uow.subjects.safety_population())
    rng = random.Random(11)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    extra = []
    for n in range(max(0, alerts - raised)):
        subject = rng.choice(subjects)
        at = now - timedelta(minutes=n)
        extra.append(
            Alert(
                key=f"bench-{n % 40}|STUDY|{subject}|AE:BENCH-{n}",
                rule_id=f"bench-{n % 40}",
                rule_title=f"Benchmark rule {n % 40}",
                severity=SEVERITIES[n % 4],
                action="review",
                study_id="ALTER-ICI-01",
                subject_id=subject,
                subject_ref=f"AE:BENCH-{n}",
                term="Hypertension",
                observed_on=at.date().isoformat(),
                grade=1 + n % 4,
                status=AlertStatus.OPEN,
                raised_at=at,
                updated_at=at,
                last_msg_id=f"bench-msg-{n}",
                detail="benchmark alert",
                ruleset_hash="0" * 64,
                ctcae_version="5.0",
            )
        )
    for start in range(0, len(extra), 2000):
        chunk = extra[start : start + 2000]
        async with app.store() as uow:
            await uow.alerts.put(chunk)
            await uow.alerts.add_changes(
                [AlertChange(a, ChangeKind.RAISED, None, a.last_msg_id, a.raised_at) for a in chunk]
            )
            await uow.commit()
    await add_user(app.store, app.hasher, "bench", Role.MEDICAL_MONITOR, PASSWORD, at=now)
    token = await issue_token(app.store, "bench", at=now)
    await app.close()
    return summary.outcome.received, raised + len(extra), [token, *subjects[:20]]


def timed(client: TestClient, path: str, runs: int, headers: dict[str, str] | None = None) -> list[float]:
    client.get(path, headers=headers)  # warm up (templates compiled, connections open)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        answer = client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, (path, answer.status_code)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=100, help="requests per endpoint")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = replace(
            Settings(),
            database_url=f"sqlite:///{root}/bench.db",
            mail_capture_dir=root / "mail",
            alert_recipients=("medical-monitor@example.org",),
        )
        messages = root / "load.jsonl"
        write_jsonl(messages, generate_load(args.messages))
        app = bootstrap(settings)
        app.hasher = Argon2Hasher(time_cost=1, memory_cost=1024)
        started = time.perf_counter()
        received, alerts, (token, *subjects) = asyncio.run(fill(app, messages, args.alerts))
        print(f"database: {received:,} messages replayed, {alerts:,} alerts ({time.perf_counter() - started:.0f} s)")
        web_app = bootstrap(settings)
        web_app.hasher = app.hasher
        with TestClient(create_app(web_app)) as client:
            form = client.get("/login").text
            csrf = form.split('name="csrf_token" value="')[1].split('"')[0]
            login = {"username": "bench", "password": PASSWORD, "csrf_token": csrf}
            assert client.post("/login", data=login, follow_redirects=False).status_code == 303
            bearer = {"Authorization": f"Bearer {token}"}
            results = {
                "/alerts": timed(client, "/alerts", args.runs),
                "/api/v1/alerts": timed(client, "/api/v1/alerts", args.runs, bearer),
                "/subjects/{id}": [
                    t for n in range(args.runs) for t in timed(client, f"/subjects/{subjects[n % len(subjects)]}", 1)
                ],
            }
    print(f"{'endpoint':<18} {'p50 ms':>8} {'p95 ms':>8}  (target p95 < {TARGET_P95_MS:.0f} ms; {args.runs} requests)")
    worst = 0.0
    for path, times in results.items():
        p95 = statistics.quantiles(times, n=20)[-1]
        worst = max(worst, p95)
        print(f"{path:<18} {statistics.median(times):>8.1f} {p95:>8.1f}")
    print("all under target" if worst < TARGET_P95_MS else f"OVER TARGET: worst p95 {worst:.1f} ms")


if __name__ == "__main__":
    main()
