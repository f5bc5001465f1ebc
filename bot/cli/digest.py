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
    from bot.app.digest_job import digest_at

    zone = settings.zone
    try:
        as_of = parse_when(args.as_of, zone) if args.as_of else datetime.now(UTC)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    engine = make_engine(settings.database.url)
    if args.print_:  # reads only: no ORM, no outbox (a staff command starts in under half a second)
        from bot.compose.notices import staff_templates

        subject, text, _html = staff_templates(settings).digest(digest_at(engine, settings, as_of))
        print(f"{subject}\n\n{text}")
        return 0
    from bot.app.digest_job import queue_digest
    from bot.app.notify import Notifier

    notifier = Notifier(settings)
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
