"""`cases ...`: list, show, and the staff actions."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

from bot.cli.commands import TABLE_ROWS
from bot.core.clock import parse_when
from bot.core.errors import UsageError
from bot.settings import Settings


def handle(args: argparse.Namespace, settings: Settings, _hooks: Any) -> int:
    from bot.adapters.store.engine import make_engine

    engine = make_engine(settings.database.url)
    zone, now = settings.zone, datetime.now(UTC)

    if args.action in ("list", "show"):
        from bot.staff.views import case_detail_json, case_json

        if args.action == "list":
            from bot.adapters.store.reads import list_cases

            newest = args.limit if args.limit is not None else None if args.json or args.all else TABLE_ROWS
            rows, total = list_cases(engine, status=args.status, kind=args.kind,
                                     overdue_at=now if args.overdue else None, newest=newest)
            data = [case_json(c, now, zone) for c in rows]
            if args.json:
                print(json.dumps(data, ensure_ascii=False, indent=2))
            else:
                _print_table(data, total)
            return 0
        from bot.adapters.store.cases import load_case

        case, messages, events = load_case(engine, args.ref)
        detail = case_detail_json(case, messages, events, now, zone)
        if args.json:
            print(json.dumps(detail, ensure_ascii=False, indent=2))
        else:
            _print_detail(detail)
        return 0
    if args.action == "purge":
        from bot.adapters.store.retention import purge, wipe

        if settings.database.retention_days <= 0:
            raise UsageError("database.retention_days is 0 (keep forever): nothing to purge")
        report = purge(engine, now=now, retention_days=settings.database.retention_days, dry_run=args.dry_run)
        verb = "would erase" if args.dry_run else "erased"
        refs = report.refs
        print(f"{verb} personal data of {len(refs)} closed case(s)" + (": " + ", ".join(refs) if refs else ""))
        print(f"{verb} {report.messages} message(s) ({report.caseless} that never became a case), "
              f"{report.outbox} sent mail(s) (digests and staff notices included), {report.events} history detail(s)")
        if args.dry_run:
            return 0
        wiped = wipe(engine)
        print(("freed space wiped: " if wiped.done else "warning: freed space NOT wiped: ") + wiped.detail)
        return 0 if wiped.done else 1

    from bot.core import lifecycle
    from bot.core.model import CaseOutcome, Kind
    from bot.staff import actions
    from bot.staff.actions import apply, os_user, set_kinds

    actor = args.actor or os_user()
    if args.action == "export":
        return _export(args, settings, engine, now, actor)

    def when(text: str | None) -> datetime:
        try:
            return parse_when(text, zone) if text else now
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    event: lifecycle.CaseEvent
    if args.action == "set-kinds":
        try:
            kinds = tuple(Kind(k.strip()) for k in args.kinds.split(",") if k.strip())
        except ValueError:
            raise UsageError(f"--kinds: use {', '.join(k.value for k in Kind)}") from None
        case, line = set_kinds(engine, args.ref, kinds, now=now, policy=settings.case_policy,
                               actor=args.actor or os_user(),
                               keep_text=settings.database.keep_bodies and settings.sorter.keep_correction_text)
        print(f"{case.ref}: {line}")
        return 0
    if args.action == "docs-received":  # the command line may date ahead (scripted replays); the console not
        case, line = actions.documents_received(engine, args.ref, when(args.on), now=now, policy=settings.case_policy,
                                                actor=actor, allow_future=True)
        print(f"{case.ref}: {line}")
        return 0
    elif args.action == "responded":
        case, line = actions.responded(engine, args.ref, when(args.on), now=now, policy=settings.case_policy,
                                       actor=actor, allow_future=True)
        print(f"{case.ref}: {line}")
        return 0
    elif args.action in ("reply", "identity") and not (args.action == "identity" and args.verified):
        mailing = _mailing(settings)
        if args.action == "reply":
            text = sys.stdin.read() if args.message_stdin else args.message
            case, message_id = actions.reply(engine, mailing, args.ref, text, now=now, actor=actor)
            print(f"{case.ref}: reply {message_id} queued to {case.requester}")
        else:
            case, line = actions.documents_insufficient(engine, mailing, args.ref, args.insufficient, now=now,
                                                        actor=actor)
            print(f"{case.ref}: {line}")
        _send_now(settings, engine)
        return 0
    elif args.action == "identity":
        event = lifecycle.IdentityVerified(args.verified)
    elif args.action == "outcome":
        event = lifecycle.OutcomeRecorded(CaseOutcome(args.outcome), args.reason, when(args.on))
    elif args.action == "handled":
        event = lifecycle.Handled()
    elif args.action == "extend":
        event = lifecycle.Extend(args.days, args.reason)
    else:
        event = lifecycle.Close(now, args.reason)
    case, line = apply(engine, args.ref, event, now=now, policy=settings.case_policy, actor=actor)
    print(f"{case.ref}: {line}")
    return 0


def _mailing(settings: Settings) -> Any:

    from bot.app.mailing import Mailing
    from bot.compose.templates import Renderer, template_folders

    return Mailing(settings, Renderer(*template_folders(settings.paths.templates)))


def _send_now(settings: Settings, engine: Any) -> None:
    """Send what the outbox holds now (a running `run` would send it within a second or two too)."""
    import logging

    from bot.adapters.locks import Presence
    from bot.adapters.smtp import Mailer
    from bot.app.outbox import flush

    presence = Presence(engine)
    try:
        report = flush(engine, Mailer(settings.smtp), presence, datetime.now(UTC))
        if report.retrying or report.failed:
            logging.getLogger("bot").warning("the reply waits in the outbox (SMTP: %s retrying, %s failed)",
                                             report.retrying, report.failed)
    finally:
        presence.close()


def _export(args: argparse.Namespace, settings: Settings, engine: Any, now: datetime, actor: str) -> int:
    from functools import partial
    from pathlib import Path

    from bot.adapters.originals import fetch_originals
    from bot.staff.evidence import build_pack

    out = Path(args.out)
    pack = build_pack(engine, args.ref, partial(fetch_originals, settings.mailbox), now=now, zone=settings.zone,
                      exported_by=actor)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(pack.data)
        tmp.replace(out)
    except OSError as exc:
        raise UsageError(f"--out {out}: {exc.strerror or exc}") from None
    for path in pack.missing:
        print(f"warning: {path}: the mailbox no longer holds this customer mail; listed as missing",
              file=sys.stderr)
    print(f"{args.ref.upper()}: evidence pack written to {out} ({pack.files} files, {len(pack.data):,} bytes)")
    return 0


def _print_table(rows: list[dict[str, Any]], total: int) -> None:
    """A plain aligned table: fast for 100,000 rows, and easy to grep."""
    head = ("ref", "status", "kinds", "requester", "lang", "opened", "due", "")
    table = [(r["ref"], r["status"], ",".join(r["kinds"]), r["requester"], r["language"],
              (r["opened_at"] or "")[:16].replace("T", " "), (r["due_at"] or "")[:10],
              "OVERDUE" if r["overdue"] else "") for r in rows]
    widths = [max([len(h)] + [len(t[i]) for t in table[:2000]]) for i, h in enumerate(head)]
    shown = f"{total} case(s)" if total == len(rows) else f"{total} case(s), the newest {len(rows)} shown (--all for every one)"
    lines = [shown, "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines.extend("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip() for t in table)
    sys.stdout.write("\n".join(lines) + "\n")


def _print_detail(d: dict[str, Any]) -> None:
    """Plain text: customer text may hold anything, so nothing here is interpreted as markup."""
    out = [f"{d['ref']}  {d['status']}  kinds: {', '.join(d['kinds'])}  language: {d['language']}",
           f"requester: {d['requester']}   subject: {d['subject']}"]
    out += [f"  {key}: {d[key] or '-'}" for key in ("opened_at", "documents_received_at", "due_at",
                                                   "responded_at", "closed_at", "identity", "outcome",
                                                   "outcome_reason")]
    if d.get("customer_waiting"):
        out.append(f"  customer waiting since {d['customer_waiting_since']}")
    out.append("messages")
    out += [f"  {m['recorded_at'][:16]} {m['direction']:3} {m['action']:10} {m['message_id']}  {m['subject']}"
            for m in d["messages"]]
    out.append("history")
    out += [f"  {e['at'][:16]} {e['actor']:12} {e['kind']:18} {e['detail']}" for e in d["events"]]
    sys.stdout.write("\n".join(out) + "\n")
