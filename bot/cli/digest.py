"""`digest --print` and `digest --send`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from bot.core.clock import parse_when
from bot.core.errors import ConfigError, UsageError
from bot.settings import Settings


def handle(args: argparse.Namespace, settings: Settings, _hooks: Any) -> int:
    from bot.adapters.store.engine import make_engine
    from bot.app.digest_job import digest_at, queue_digest
    from bot.app.notify import Notifier

    zone = settings.zone
    try:
        as_of = parse_when(args.as_of, zone) if args.as_of else datetime.now(UTC)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    engine = make_engine(settings.database.url)
    notifier = Notifier(settings)
    if args.print_:
        subject, text, _html = notifier.templates.digest(digest_at(engine, settings, as_of))
        print(f"{subject}\n\n{text}")
        return 0
    if not notifier.recipients:
        raise ConfigError("config key staff.digest_recipients is empty: nobody to send the digest to")
    from bot.adapters.locks import Presence
    from bot.adapters.smtp import Mailer
    from bot.app.outbox import flush

    stamp = as_of.astimezone(zone).strftime("%Y-%m-%d-%H%M")
    if not queue_digest(engine, notifier, as_of, stamp):
        print(f"digest for {stamp} was already queued")
    with Presence(engine) as worker:
        report = flush(engine, Mailer(settings.smtp), worker, datetime.now(UTC))
    print(f"digest sent to {report.sent} recipient(s)" + (f", {report.retrying} to retry" if report.retrying else ""))
    return 0
