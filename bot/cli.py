"""Command line: `python run_bot.py [--config PATH] COMMAND ...` (SPEC section 2).

Only this module decides exit codes: 0 done, 1 failed, 2 bad usage or bad config.
Results go to standard output, logs to standard error.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bot.settings import Settings, config_path, load_settings
from bot.core.errors import BotError, ConfigError, UsageError

TABLE_ROWS = 200  # `cases list` as a table: the newest cases; a person does not read 100,000 lines
log = logging.getLogger("bot")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with one line, as argparse does, but via UsageError
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="run_bot.py", description="Privacy mailbox bot")
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config/bot.toml)")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="watch the mailbox and answer, until stopped")
    run.add_argument("--once", action="store_true", help="process what is waiting, send what is due, exit")

    cases = sub.add_parser("cases", help="list, show and update cases")
    csub = cases.add_subparsers(dest="action", required=True, parser_class=_Parser)
    ls = csub.add_parser("list", help="the cases")
    ls.add_argument("--status", choices=["awaiting_documents", "in_progress", "responded", "closed", "needs_staff"])
    ls.add_argument("--kind", choices=["disclosure", "amendment", "addition", "deletion", "third_party_stop",
                                       "marketing_opt_out", "general"])
    ls.add_argument("--overdue", action="store_true", help="only cases past their due date")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--limit", type=int, metavar="N",
                    help=f"only the newest N cases (the table shows the newest {TABLE_ROWS} unless --all; --json shows all)")
    ls.add_argument("--all", action="store_true", help="the table shows every case")
    show = csub.add_parser("show", help="one case with its messages and events")
    show.add_argument("ref")
    show.add_argument("--json", action="store_true")
    docs = csub.add_parser("docs-received", help="the postal documents arrived: starts the response clock")
    docs.add_argument("ref")
    docs.add_argument("--on", help="date (YYYY-MM-DD) or date-time; default now")
    ext = csub.add_parser("extend", help="extend the due date")
    ext.add_argument("ref")
    ext.add_argument("--days", type=int, required=True)
    ext.add_argument("--reason", required=True)
    resp = csub.add_parser("responded", help="the written answer was sent")
    resp.add_argument("ref")
    resp.add_argument("--on")
    sk = csub.add_parser("set-kinds", help="sort a needs_staff case by hand")
    sk.add_argument("ref")
    sk.add_argument("--kinds", required=True, help="comma-separated, e.g. disclosure,deletion")
    purge = csub.add_parser("purge", help="erase personal data of cases closed over database.retention_days ago")
    purge.add_argument("--dry-run", action="store_true", help="only list what would be erased")
    close = csub.add_parser("close", help="close the case")
    close.add_argument("ref")
    close.add_argument("--reason", default="")

    tpl = sub.add_parser("templates", help="check or preview reply templates")
    tsub = tpl.add_subparsers(dest="action", required=True, parser_class=_Parser)
    tsub.add_parser("check", help="render every template in every language with sample data")
    prev = tsub.add_parser("preview", help="print one rendered message")
    prev.add_argument("name")
    prev.add_argument("--lang", choices=["ja", "en"], default="en")

    dig = sub.add_parser("digest", help="the staff digest, printed or mailed")
    mode = dig.add_mutually_exclusive_group(required=True)
    mode.add_argument("--print", action="store_true", dest="print_", help="print the text digest")
    mode.add_argument("--send", action="store_true", help="mail it to staff.digest_recipients")
    dig.add_argument("--as-of", help="date-time the digest is made for (default now)")

    cfg = sub.add_parser("config", help="show the effective configuration, secrets masked")
    csub2 = cfg.add_subparsers(dest="action", required=True, parser_class=_Parser)
    csub2.add_parser("show")

    demo = sub.add_parser("demo", help="run the whole bot here with its own IMAP and SMTP servers")
    demo.add_argument("--dir", default="demo-data", help="where the demo keeps its SQLite file")
    demo.add_argument("--exit-after", type=float, default=0.0,
                      help="stop after this many seconds once the samples are answered (0: run until Ctrl-C)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _configure_logging("INFO")
    try:
        if args.command == "demo":
            from bot.demo import run_demo

            return run_demo(Path(args.dir), exit_after=args.exit_after)
        settings = load_settings(config_path(args.config))
        logging.getLogger().setLevel(settings.log.level)
        return _dispatch(args, settings)
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("imapclient", "apscheduler", "mail.log", "aiosmtplib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _now() -> datetime:
    return datetime.now(UTC)


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "run":
        return _run(settings, once=args.once)
    if args.command == "cases":
        return _cases(args, settings)
    if args.command == "templates":
        return _templates(args, settings)
    if args.command == "digest":
        return _digest(args, settings)
    if args.command == "config":
        print(json.dumps(settings.masked(), indent=2, ensure_ascii=False))
        return 0
    raise UsageError(f"unknown command {args.command}")


def _run(settings: Settings, *, once: bool) -> int:
    from bot.app.service import Bot

    bot = Bot(settings)
    try:
        if once:
            outcomes = bot.run_once()
            log.info("run --once: %s new mail(s) taken in", len(outcomes))
            return 0

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping", signum)
            bot.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        bot.run()
        return 0
    finally:
        bot.close()


def _cases(args: argparse.Namespace, settings: Settings) -> int:
    from bot.staff import actions as staff
    from bot.core.clock import parse_when
    from bot.core.lifecycle import Close, DocsReceived, Extend, Responded
    from bot.adapters.store import make_engine
    from bot.staff.views import case_detail_json, case_json

    engine = make_engine(settings.database.url)
    zone, now = settings.zone, _now()
    policy = settings.policy

    def when(text: str | None) -> datetime:
        try:
            return parse_when(text, zone) if text else now
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    if args.action == "list":
        newest = args.limit if args.limit is not None else None if args.json or args.all else TABLE_ROWS
        rows, total = staff.list_cases(engine, status=args.status, kind=args.kind,
                                       overdue_at=now if args.overdue else None, newest=newest)
        data = [case_json(c, now, zone) for c in rows]
        if args.json:
            print(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            _print_table(data, total)
        return 0
    if args.action == "show":
        case, messages, events = staff.load_case(engine, args.ref)
        detail = case_detail_json(case, messages, events, now, zone)
        if args.json:
            print(json.dumps(detail, ensure_ascii=False, indent=2))
        else:
            _print_detail(detail)
        return 0
    if args.action == "purge":
        from bot.staff.retention import purge

        if settings.database.retention_days <= 0:
            raise UsageError("database.retention_days is 0 (keep forever): nothing to purge")
        refs = purge(engine, now=now, retention_days=settings.database.retention_days, dry_run=args.dry_run)
        verb = "would erase" if args.dry_run else "erased"
        print(f"{verb} personal data of {len(refs)} closed case(s)" + (": " + ", ".join(refs) if refs else ""))
        return 0
    if args.action == "set-kinds":
        from bot.core.model import Kind

        try:
            kinds = tuple(Kind(k.strip()) for k in args.kinds.split(",") if k.strip())
        except ValueError:
            raise UsageError(f"--kinds: use {', '.join(k.value for k in Kind)}") from None
        case, line = staff.set_kinds(engine, args.ref, kinds, now=now)
        print(f"{case.ref}: {line}")
        return 0
    event: Any
    if args.action == "docs-received":
        event, kind = DocsReceived(when(args.on)), "documents_received"
    elif args.action == "extend":
        event, kind = Extend(args.days, args.reason), "extended"
    elif args.action == "responded":
        event, kind = Responded(when(args.on)), "responded"
    else:
        event, kind = Close(now, args.reason), "closed"
    case, line = staff.apply(engine, args.ref, event, now=now, response_days=policy.response_days,
                             zone=zone, event_kind=kind, calendar=settings.calendar)
    print(f"{case.ref}: {line}")
    return 0


def _digest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.core.clock import parse_when
    from bot.app.digest_job import digest_now
    from bot.adapters.store import make_engine

    zone = settings.zone
    try:
        as_of = parse_when(args.as_of, zone) if args.as_of else _now()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    engine = make_engine(settings.database.url)
    subject, text, html = digest_now(engine, settings, as_of)
    if args.print_:
        print(f"{subject}\n\n{text}")
        return 0
    if not settings.staff.digest_recipients:
        raise ConfigError("config key staff.digest_recipients is empty: nobody to send the digest to")
    from bot.app.digest_job import queue_digest
    from bot.adapters.smtp import Mailer
    from bot.app.outbox import flush
    from bot.adapters.locks import Presence

    stamp = as_of.astimezone(zone).strftime("%Y-%m-%d-%H%M")
    if not queue_digest(engine, settings, as_of, stamp):
        print(f"digest for {stamp} was already queued")
    with Presence(engine) as worker:
        report = flush(engine, Mailer(settings.smtp), worker, _now())
    print(f"digest sent to {report.sent} recipient(s)" + (f", {report.retrying} to retry" if report.retrying else ""))
    return 0


def _print_table(rows: list[dict[str, Any]], total: int) -> None:
    """A plain aligned table: fast for 100,000 rows, and easy to grep."""
    head = ("ref", "status", "kinds", "requester", "lang", "opened", "due", "")
    table = [(r["ref"], r["status"], ",".join(r["kinds"]), r["requester"], r["language"],
              (r["opened_at"] or "")[:16].replace("T", " "), (r["due_at"] or "")[:10],
              "OVERDUE" if r["overdue"] else "") for r in rows]
    widths = [max([len(h)] + [len(t[i]) for t in table[:2000]]) for i, h in enumerate(head)]
    shown = f"{total} case(s)" if total == len(rows) else f"{total} case(s), the newest {len(rows)} shown (--all for every one)"
    lines = [shown, "  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip()]
    lines.extend("  ".join(v.ljust(w) for v, w in zip(t, widths)).rstrip() for t in table)
    sys.stdout.write("\n".join(lines) + "\n")


def _print_detail(d: dict[str, Any]) -> None:
    from rich.console import Console

    con = Console()
    con.print(f"[bold]{d['ref']}[/]  {d['status']}  kinds: {', '.join(d['kinds'])}  language: {d['language']}")
    con.print(f"requester: {d['requester']}   subject: {d['subject']}", markup=False)
    for key in ("opened_at", "documents_received_at", "due_at", "responded_at", "closed_at"):
        con.print(f"  {key}: {d[key] or '-'}", markup=False)
    con.print("[bold]messages[/]")
    for m in d["messages"]:
        con.print(f"  {m['recorded_at'][:16]} {m['direction']:3} {m['action']:10} {m['message_id']}  {m['subject']}",
                  markup=False)
    con.print("[bold]history[/]")
    for e in d["events"]:
        con.print(f"  {e['at'][:16]} {e['actor']:12} {e['kind']:18} {e['detail']}", markup=False)


def _check_digest_templates(settings: Settings) -> list[str]:
    from bot.compose.digest import DigestFacts, build_digest, render_digest
    from bot.core.errors import TemplateProblem

    now = _now()
    digest = build_digest(DigestFacts({}, [], {}), as_of=now, since=now, zone=settings.zone)
    problems = []
    from jinja2 import TemplateError

    from bot.compose.digest import staff_environment

    staff_dir = Path(settings.paths.templates) / "staff"
    env = staff_environment(Path(settings.paths.templates))
    for lang in ("en", "ja"):
        try:
            render_digest(digest, lang, Path(settings.paths.templates))
        except TemplateProblem as exc:
            problems.append(str(exc))
        for overdue in (False, True):
            try:
                env.get_template(f"alert.{lang}.txt.j2").render(ref="PRV-2026-00001", kinds=["deletion"],
                                                                requester="a@example.com", opened="2026-12-01",
                                                                due="2026-12-18", overdue=overdue)
            except TemplateError as exc:
                problems.append(f"staff alert template in {staff_dir} ({lang}): {exc}")
    return problems


def _templates(args: argparse.Namespace, settings: Settings) -> int:
    from bot.compose.templates import Renderer, check_all, sample_context

    renderer = Renderer(Path(settings.paths.templates))
    if args.action == "check":
        problems = check_all(renderer)
        problems += _check_digest_templates(settings)
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        if problems:
            return 1
        print("templates ok")
        return 0
    rendered = renderer.render(args.name, args.lang, sample_context(args.lang))
    print(f"Subject: {rendered.subject}\n\n{rendered.text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
