"""Site traffic for the Kafka tests: a trial's lines published at a steady rate from a thread, as a site sends them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from streams.publish import producer, publish_lines
from streams.topics import KafkaSettings


class SteadyPublisher:
    """Publishes a trial's lines at a steady rate from a thread (what a site does), invalid lines included so the
    dead-letter path runs too. It pauses at `hold_at` until `release()`, and stops early on `stop()`."""

    def __init__(self, kafka: KafkaSettings, lines: tuple[str, ...], per_second: int, hold_at: float) -> None:
        self.kafka = kafka
        self.lines = lines
        self.per_second = per_second
        self.hold_at = int(len(lines) * hold_at)
        self.sent = 0
        self._released = threading.Event()
        self._stopped = threading.Event()

    def run(self) -> None:
        client = producer(self.kafka)
        try:
            started = time.monotonic()
            for chunk in self._chunks(size=max(self.per_second // 10, 1)):
                if self.sent >= self.hold_at and not self._released.is_set():
                    # no client while held: one left idle through a broker outage leaks the sockets of its
                    # failed reconnects
                    client.close()
                    assert self._released.wait(180), "the publisher was never released"
                    client = producer(self.kafka)
                    started = time.monotonic() - self.sent / self.per_second
                if self._stopped.is_set():
                    return
                publish_lines(self.kafka, chunk, send_invalid=True, client=client)
                self.sent += len(chunk)
                ahead = started + self.sent / self.per_second - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        finally:
            client.close()

    def _chunks(self, size: int) -> Iterator[list[tuple[str, str]]]:
        numbered = [(line, f"trial.jsonl:{n}") for n, line in enumerate(self.lines, start=1)]
        for start in range(0, len(numbered), size):
            yield numbered[start : start + size]

    @property
    def done(self) -> bool:
        return self.sent == len(self.lines)

    def release(self) -> None:
        self._released.set()

    def stop(self) -> None:
        self._stopped.set()
        self._released.set()
