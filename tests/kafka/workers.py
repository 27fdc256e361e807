"""`safety-monitor worker` processes for the Kafka tests: started, probed over health, stopped or SIGKILLed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
WORKER_TIMEOUT_S = 600  # a stuck worker is killed by `timeout -k`, never hangs CI


class WorkerProcess:
    """`safety-monitor worker` in its own process group, under `timeout -k` so it can never hang the run."""

    def __init__(self, name: str, env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.port = int(env["WORKER_WEB_PORT"])
        self.log_path = log_path
        self._log = log_path.open("ab")
        command = ["timeout", "-k", "5", str(WORKER_TIMEOUT_S), str(BIN / "safety-monitor"), "worker"]
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health/", timeout=2) as response:
                return dict(json.load(response))
        except urllib.error.HTTPError as exc:  # 503 while starting or stuck: still a JSON report
            try:
                return dict(json.load(exc))
            except ValueError:
                return None
        except OSError:
            return None

    async def ready(self, seconds: float = 60) -> dict[str, Any]:
        """Wait until the worker serves health and holds partitions."""
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited {self.process.returncode}: {self.tail()}")
            report = await asyncio.to_thread(self.health)
            if report and report["consumer"]["lag"]:
                return report
            await asyncio.sleep(0.2)
        raise AssertionError(f"worker {self.name} not ready in {seconds} s: {self.tail()}")

    @property
    def pid(self) -> int:
        """The worker's own pid (the child of `timeout`), as its health report names it."""
        report = self.health()
        assert report is not None, self.tail()
        return int(report["holder"].split(":")[1])

    def terminate(self, seconds: float = 60) -> int:
        os.kill(self.pid, signal.SIGTERM)
        return self.wait(seconds)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.wait(10)

    def wait(self, seconds: float) -> int:
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            raise AssertionError(f"worker {self.name} did not stop in {seconds} s: {self.tail()}") from None
        finally:
            self._log.close()

    def stop_quietly(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if not self._log.closed:
            self._log.close()

    def tail(self, lines: int = 40) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
