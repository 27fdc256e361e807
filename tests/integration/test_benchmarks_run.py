"""The benchmarks a user runs with `make bench` / `make bench-scale` still start and print their figures on the
trial's own rules and routing (a configuration check the service gained once kept two of them from starting)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def _run(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_ingest_benchmark_posts_to_a_real_server_on_the_trials_routing() -> None:
    out = _run("bench/bench_ingest.py", "--messages", "300", "--batch", "100")
    assert any(line.split()[:1] == ["100"] for line in out.splitlines()), out


def test_the_scale_benchmark_replays_a_small_size() -> None:
    out = _run("bench/bench_scale.py", "--sizes", "2000")
    assert "| 2,000 |" in out, out
