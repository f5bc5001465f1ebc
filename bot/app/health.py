"""`/healthz` and `/metrics` for `run` (SPEC section 8, `[health] listen`).

`Vitals` is what the running bot records as it works (when the mailbox answered, what became of
each mail, how sends went); thread-safe, kept in memory, counted since the process started.
`HealthServer` serves it over HTTP from a thread (the standard library's ThreadingHTTPServer):
`/healthz` answers 200 or 503 with a short JSON reason (`bot.core.health.judge`), `/metrics` the
Prometheus text of prometheus-client. Neither shows an address, a subject or a token.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.adapters.store.figures import database_answers, figures
from bot.core.errors import ConfigError
from bot.core.health import Health, Observed, judge
from bot.settings import listen_address

if TYPE_CHECKING:
    from bot.app.outbox import FlushReport
    from bot.app.service import Bot

log = logging.getLogger(__name__)


class Vitals:
    """What the bot saw, for the health page and the metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reached_at: datetime | None = None
        self.can_idle: bool | None = None
        self.leading = False
        self.waiting_in_mailbox = 0  # mail seen in the mailbox and not yet taken in
        self.taken_in: Counter[str] = Counter()
        self.sent = 0
        self.send_failures: Counter[str] = Counter()

    def reached(self, now: datetime, *, can_idle: bool | None = None) -> None:
        with self._lock:
            self.reached_at = now
            if can_idle is not None:
                self.can_idle = can_idle

    def lead(self, leading: bool) -> None:
        with self._lock:
            self.leading = leading

    def took_in(self, outcome: str) -> None:
        with self._lock:
            self.taken_in[outcome] += 1
            self.waiting_in_mailbox = max(0, self.waiting_in_mailbox - 1)

    def found_waiting(self, count: int) -> None:
        with self._lock:
            self.waiting_in_mailbox = count

    def flushed(self, report: FlushReport) -> None:
        with self._lock:
            self.sent += report.sent
            for name in ("retrying", "failed", "uncertain"):
                self.send_failures[name] += getattr(report, name)


def renew_seconds(bot: Bot) -> float:
    """How often the watcher hears from the mailbox at the least: the IDLE renewal, or the poll."""
    m = bot.settings.mailbox
    return float(m.idle_renew_seconds if bot.vitals.can_idle is not False else min(m.idle_renew_seconds,
                                                                                   m.poll_seconds))


def health(bot: Bot) -> Health:
    status = bot.tokens.status if bot.tokens is not None else None
    token_error = status.error.code if status is not None and status.error is not None else ""
    v = bot.vitals
    return judge(Observed(now=bot.clock(), leading=v.leading, reached_at=v.reached_at,
                          renew_seconds=renew_seconds(bot), database_ok=database_answers(bot.engine),
                          token_error=token_error))


class _Metrics(Collector):
    """Reads the bot's vitals and the store at each scrape."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    def collect(self) -> Iterator[Metric]:
        bot, v = self.bot, self.bot.vitals
        taken = CounterMetricFamily("bot_mail_taken_in", "Mail taken in from the mailbox, by outcome",
                                    labels=["outcome"])
        for outcome, n in sorted(v.taken_in.items()):
            taken.add_metric([outcome], n)
        yield taken
        yield CounterMetricFamily("bot_mail_sent", "Mail sent from the outbox (replies, reminders, staff mail)",
                                  value=v.sent)
        failures = CounterMetricFamily("bot_send_failures", "Sends that did not succeed: retrying (will be tried "
                                       "again), failed (for good), uncertain (may have been delivered)",
                                       labels=["result"])
        for result in ("retrying", "failed", "uncertain"):
            failures.add_metric([result], v.send_failures[result])
        yield failures
        yield GaugeMetricFamily("bot_mailbox_waiting_messages", "Mail seen in the mailbox and not yet taken in",
                                value=v.waiting_in_mailbox)
        if v.reached_at is not None:
            yield GaugeMetricFamily("bot_mailbox_reached_timestamp_seconds",
                                    "When the mailbox last answered (Unix time)", value=v.reached_at.timestamp())
        yield GaugeMetricFamily("bot_leader", "1 while this process watches the mailbox", value=int(v.leading))
        up = True
        try:
            f = figures(bot.engine, bot.clock())
        except Exception as exc:  # a scrape must not fail because the database does
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            up = False
        yield GaugeMetricFamily("bot_database_up", "1 when the database answered this scrape", value=int(up))
        if up:
            yield GaugeMetricFamily("bot_outbox_waiting", "Outgoing mail not yet sent", value=f.outbox_waiting)
            yield GaugeMetricFamily("bot_oldest_unanswered_inquiry_seconds",
                                    "Age of the oldest customer mail whose reply still waits in the outbox",
                                    value=f.oldest_unanswered_seconds)
            yield GaugeMetricFamily("bot_overdue_cases", "Open cases past their due date", value=f.overdue_cases)
        if bot.tokens is not None:
            status = bot.tokens.status
            yield GaugeMetricFamily("bot_oauth2_token_ok", "1 when the last OAuth 2.0 token fetch worked",
                                    value=0 if status.ok is False else 1)
            errors = CounterMetricFamily("bot_oauth2_token_errors", "Failed OAuth 2.0 token fetches, by the "
                                         "provider's error code", labels=["code"])
            for code, n in sorted(status.errors.items()):
                errors.add_metric([code], n)
            yield errors
            yield CounterMetricFamily("bot_oauth2_tokens_fetched", "OAuth 2.0 access tokens obtained",
                                      value=status.fetched)
        h = health(bot)
        yield GaugeMetricFamily("bot_healthy", "1 when /healthz answers 200", value=int(h.ok))


class HealthServer:
    """/healthz and /metrics on `listen` ("host:port"), served from a daemon thread until close()."""

    def __init__(self, bot: Bot, listen: str) -> None:
        host, port = listen_address(listen)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Metrics(bot))
        handler = _handler(bot, registry)
        try:
            self.server = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ConfigError(f"config key health.listen {listen!r}: cannot listen there ({exc.strerror})") from None
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, name="health", daemon=True)
        self.thread.start()
        log.info("health: /healthz and /metrics on %s:%s", host, self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _handler(bot: Bot, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                h = health(bot)
                body: dict[str, Any] = {"status": "ok" if h.ok else "failing", "reasons": list(h.reasons),
                                        "role": "leader" if bot.vitals.leading else "standby"}
                if h.reached_seconds_ago is not None:
                    body["mailbox_reached_seconds_ago"] = round(h.reached_seconds_ago, 1)
                self._send(200 if h.ok else 503, json.dumps(body).encode() + b"\n", "application/json")
            elif path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: try /healthz or /metrics\n", "text/plain; charset=utf-8")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # scrapes every few seconds would flood the log

    return Handler
