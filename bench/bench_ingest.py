"""Benchmark for sites publishing over HTTP: messages/s through POST /api/v1/messages of a real `safety-monitor web`
(uvicorn in its own process, SQLite) in batches of 100 and of 1,000, beside `replay` of the same messages in the
same batch sizes. One client posts one request at a time, each site's messages in order, NDJSON."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

from safety_monitor.bootstrap import bootstrap
from safety_monitor.demo import generate_load, write_jsonl
from safety_monitor.domain.access import Role
from safety_monitor.service.accounts import add_user, issue_token
from safety_monitor.settings import Settings
from streams.embedded import replay_file

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PASSWORD = "bench password, not a secret"


def settings_in(folder: Path, rules: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{folder}/bench.db",
        rules_dir=rules,
        templates_dir=ROOT / "templates",
        mail_capture_dir=folder / "mail",
        alert_recipients=("medical-monitor@example.org",),
    )


def by_site(lines: list[str]) -> dict[str, list[str]]:
    sites: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        sites[json.loads(line)["site_id"]].append(line)
    return dict(sites)


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system, every thread) of this process, or of process `pid` (Linux /proc)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def replay(folder: Path, rules: Path, file: Path, batch_size: int) -> tuple[float, float]:
    app = bootstrap(settings_in(folder, rules))
    try:
        await app.start()
        started, cpu = time.perf_counter(), cpu_seconds()
        summary = await replay_file(app, file, batch_size=batch_size)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        assert summary.outcome.applied == summary.outcome.received, "the load holds only new, valid messages"
    finally:
        await app.close()
    return seconds, cpu


async def accounts(folder: Path, rules: Path, sites: list[str]) -> dict[str, str]:
    app = bootstrap(settings_in(folder, rules))
    try:
        await app.start()
        tokens = {}
        for site in sites:
            now = app.clock.now()
            await add_user(app.store, app.hasher, f"site-{site}", Role.SITE, PASSWORD, at=now, site_id=site)
            tokens[site] = await issue_token(app.store, f"site-{site}", at=now)
        return tokens
    finally:
        await app.close()


def serve(folder: Path, rules: Path, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SAFETY_MONITOR_", "MAIL_"))}
    env |= {
        "DATABASE_URL": f"sqlite:///{folder}/bench.db",
        "SAFETY_MONITOR_RULES_DIR": str(rules),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
        "MAIL_CAPTURE_DIR": str(folder / "mail"),
    }
    if not (rules / "routing.yaml").exists():  # beside a routing file ALERT_RECIPIENTS is refused: it decides
        env["ALERT_RECIPIENTS"] = "medical-monitor@example.org"
    process = subprocess.Popen(
        [str(BIN / "safety-monitor"), "web", "--port", str(port)],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("safety-monitor web did not start")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def post_all(
    server: subprocess.Popen[bytes], port: int, sites: dict[str, list[str]], tokens: dict[str, str], batch_size: int
) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of the server and the client together, and the number of requests."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    accepted = requests = 0
    started, cpu = time.perf_counter(), cpu_seconds(server.pid) + cpu_seconds()
    for site, lines in sites.items():
        headers = {"Authorization": f"Bearer {tokens[site]}", "Content-Type": "application/x-ndjson"}
        for start in range(0, len(lines), batch_size):
            body = "".join(line + "\n" for line in lines[start : start + batch_size]).encode()
            connection.request("POST", "/api/v1/messages", body=body, headers=headers)
            answer = connection.getresponse()
            receipt = json.loads(answer.read())
            if answer.status != 200:
                raise SystemExit(f"HTTP {answer.status}: {receipt}")
            accepted += int(receipt["accepted"])
            requests += 1
    seconds, cpu = time.perf_counter() - started, cpu_seconds(server.pid) + cpu_seconds() - cpu
    connection.close()
    total = sum(len(lines) for lines in sites.values())
    if accepted != total:
        raise SystemExit(f"accepted {accepted} of {total}")
    return seconds, cpu, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="synthetic messages (default 20,000)")
    parser.add_argument("--batch", type=int, action="append", help="batch size (repeatable; default 100 and 1000)")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules", help="rules directory (default: the trial's)")
    args = parser.parse_args()
    sizes = args.batch or [100, 1000]
    lines = list(generate_load(args.messages))
    sites = by_site(lines)
    print(f"messages:  {len(lines):,} from {len(sites)} sites; rules {args.rules}")
    print("store:     SQLite (a fresh file per run); one client, one request at a time")
    print("msg/s: messages per wall-clock second; msg/cpu-s: per CPU second (POST: server and client together),")
    print("the figure to compare on a busy machine, where the wall clock also counts waiting for a core")
    head = ("batch", "replay msg/s", "POST msg/s", "replay msg/cpu-s", "POST msg/cpu-s", "requests")
    print("{:>6}  {:>13}  {:>11}  {:>17}  {:>15}  {:>8}".format(*head))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        base = Path(tmp)
        ordered = [line for site_lines in sites.values() for line in site_lines]
        file = base / "load.jsonl"
        write_jsonl(file, ordered)
        for size in sizes:
            replayed = base / f"replay-{size}"
            replayed.mkdir()
            replay_seconds, replay_cpu = asyncio.run(replay(replayed, args.rules, file, size))
            posted = base / f"post-{size}"
            posted.mkdir()
            tokens = asyncio.run(accounts(posted, args.rules, sorted(sites)))
            port = free_port()
            server = serve(posted, args.rules, port)
            try:
                post_seconds, post_cpu, requests = post_all(server, port, sites, tokens, size)
            finally:
                server.terminate()
                server.wait(timeout=30)
            n = len(lines)
            rates = (n / replay_seconds, n / post_seconds, n / replay_cpu, n / post_cpu)
            cells = [f"{size:>6}", f"{rates[0]:>13,.0f}", f"{rates[1]:>11,.0f}", f"{rates[2]:>17,.0f}"]
            print("  ".join([*cells, f"{rates[3]:>15,.0f}", f"{requests:>8}"]))
    print("figures from a machine shared with other work are noisy: compare the columns of one run")


if __name__ == "__main__":
    main()
