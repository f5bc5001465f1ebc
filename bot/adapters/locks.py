"""Who is working: this process's identity, whether another worker is alive, and who leads.

Several `run` processes may share one database. One of them, the leader, watches the mailbox and
runs the scheduled jobs; every one of them sends what the outbox holds, claiming rows first.
A claim names its worker, so a worker that died can be told apart from one that is busy:

- PostgreSQL: each worker holds a session advisory lock on its own key for its whole life (the
  leader also holds LEADER_KEY). The server drops a session's locks when its connection dies, so
  "is X alive?" is "can I not take X's lock?", and fail-over takes as long as the next try.
- SQLite (one machine): a worker is alive while its process is (pid and start time), and the
  leader holds an exclusive flock on a file beside the database.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import secrets
import socket
from pathlib import Path
from typing import IO, Self

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

LEADER_KEY = 0x5052_5642_4F54  # "PRVBOT": the one lock that makes a process the leader


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot, or "" where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 overall; fields after the command name


def this_worker() -> str:
    """host:pid:start-ticks:nonce; the nonce keeps two Presences of one process apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}:{secrets.token_hex(4)}"


def worker_key(worker: str) -> int:
    """A signed 64-bit advisory-lock key for a worker id."""
    return int.from_bytes(hashlib.blake2b(worker.encode(), digest_size=8).digest(), "big", signed=True)


def _process_alive(worker: str) -> bool:
    host, _, rest = worker.partition(":")
    pid_text, _, rest = rest.partition(":")
    ticks = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # not ours to judge; a SQLite file is not shared across machines anyway
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not ticks or _start_ticks(pid) == ticks


class Presence:
    """This process's membership among the workers; hold it (a context manager) while working."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.id = this_worker()
        self.leading = False
        self._pg = engine.dialect.name == "postgresql"
        self._conn: Connection | None = None
        self._lock_file: IO[bytes] | None = None
        if self._pg:
            self._connect()

    def _connect(self) -> None:
        self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self._conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": worker_key(self.id)})

    def is_alive(self, worker: str) -> bool:
        if worker == self.id:
            return True
        if not self._pg:
            return _process_alive(worker)
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": worker_key(worker)}).scalar()
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": worker_key(worker)})
            return not got

    def try_lead(self) -> bool:
        """Become the leader if no live process is; stays True while this process leads."""
        if self._pg:
            return self._try_lead_pg()
        if self._lock_file is None:
            path = self._leader_file()
            if path is None:
                self.leading = True
                return True
            handle = open(path, "ab")  # noqa: SIM115 - held open while leading: it is the lock
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
            self._lock_file = handle
            self.leading = True
        return self.leading

    def _try_lead_pg(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self.leading = False
                self._connect()
            assert self._conn is not None
            if self.leading:
                self._conn.execute(text("SELECT 1"))  # the lock lives as long as this session
                return True
            self.leading = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_KEY}).scalar())
        except DBAPIError as exc:
            log.warning("lost the database session that holds the worker locks (%s)", exc)
            self._drop_connection()
            self.leading = False
        return self.leading

    def _leader_file(self) -> Path | None:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return None
        return Path(f"{database}.leader")

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except DBAPIError:
                pass
            self._conn = None

    def close(self) -> None:
        self._drop_connection()  # closing the session releases its advisory locks
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
        self.leading = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
