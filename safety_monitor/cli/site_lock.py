"""Owns the exclusive lock of a site's inbox and database: one `serve` per site, and who holds it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

LOCK_NAME = ".serve.lock"


class SiteLocked(Exception):
    """Another live process holds the lock; the message names its pid and the lock file."""


@dataclass
class SiteLock:
    """`fcntl.flock` on a lock file beside the inbox and one beside a SQLite database, held for the process's life.

    The kernel drops the lock when the process dies, however it dies, so a crashed holder never blocks a new
    start (a pid file alone is racy and outlives its process). The file holds the holder's pid for the message."""

    paths: list[Path]
    _handles: list[IO[str]] = field(default_factory=list)

    @classmethod
    def for_site(cls, inbox: Path, database_url: str) -> SiteLock:
        paths = [inbox.with_name(inbox.name + LOCK_NAME)]  # beside the inbox, not in it
        parsed = make_url(database_url)
        if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
            paths.append(Path(parsed.database + LOCK_NAME))
        return cls(paths)

    def acquire(self) -> None:
        for path in self.paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = path.open("a+", encoding="utf-8")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                self.release()
                raise SiteLocked(
                    f"another serve (pid {holder}) already runs on this inbox or database: {path} is locked; "
                    "one serve per inbox and database"
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            self._handles.append(handle)

    def release(self) -> None:
        while self._handles:
            handle = self._handles.pop()
            with contextlib.suppress(OSError):
                handle.close()  # closing drops the flock


def holder_is_dead(holder: str) -> bool:
    """Whether a lease holder ("host:pid:...") is a process of this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
