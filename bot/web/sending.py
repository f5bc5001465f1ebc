"""Sends what the console queued (a staff reply) at once, from a background thread, so a reply does not
wait for the next pass of `run` (which would send it too: the outbox is safe to flush from any
number of processes)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Engine

from bot.adapters.locks import Presence
from bot.adapters.smtp import Mailer
from bot.app.outbox import flush
from bot.settings import Settings

log = logging.getLogger(__name__)


class OutboxSender:
    def __init__(self, settings: Settings, engine: Engine, clock: Callable[[], datetime] | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock or (lambda: datetime.now(UTC))
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """Send what is due soon (returns at once)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="console-outbox", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        presence = Presence(self.engine)
        mailer = Mailer(self.settings.smtp)
        try:
            while not self._stop.is_set():
                self._wake.wait()
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    report = flush(self.engine, mailer, presence, self.clock())
                    if report.retrying or report.failed:
                        log.warning("console outbox: %s retrying, %s failed", report.retrying, report.failed)
                except Exception:  # the reply stays in the outbox; `run` retries it
                    log.exception("console outbox flush failed")
        finally:
            presence.close()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
