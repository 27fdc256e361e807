"""`safety-monitor web` as an operator starts it: a real uvicorn process on a free port answers /healthz without
login, redirects pages to /login and refuses the API without a token; SIGTERM stops it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.e2e


def _get(url: str) -> tuple[int, str, dict[str, str]]:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=5) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


def test_the_web_command_serves_the_workspace(tmp_path: Path) -> None:
    port = free_port()
    env = os.environ | {
        "DATABASE_URL": f"sqlite:///{tmp_path}/web.db",
        "SAFETY_MONITOR_RULES_DIR": str(ROOT / "rules"),
        "SAFETY_MONITOR_TEMPLATES_DIR": str(ROOT / "templates"),
    }
    command = [str(Path(sys.executable).parent / "safety-monitor"), "web", "--port", str(port)]
    process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body, _ = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("safety-monitor web did not start") from None
                time.sleep(0.2)
        assert (status, json.loads(body)["database"]) == (200, "reachable")
        status, _, headers = _get(f"http://127.0.0.1:{port}/alerts")
        assert (status, headers["location"]) == (303, "/login")
        assert _get(f"http://127.0.0.1:{port}/api/v1/alerts")[0] == 401
        assert "content-security-policy" in {k.lower() for k in _get(f"http://127.0.0.1:{port}/login")[2]}
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM, as the supervisor asked).
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete." in output
    assert f"review workspace on http://127.0.0.1:{port}" in output
