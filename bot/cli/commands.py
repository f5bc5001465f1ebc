"""Every command's arguments, in one place (SPEC section 2): `run_bot.py --help` lists them."""

from __future__ import annotations

import argparse
from typing import Any

from bot.core.model import CaseOutcome, Kind, Status

TABLE_ROWS = 200  # `cases list` as a table: the newest cases; a person does not read 100,000 lines


def add_commands(sub: Any) -> None:
    run = sub.add_parser("run", help="watch the mailbox and answer, until stopped")
    run.add_argument("--once", action="store_true", help="process what is waiting, send what is due, exit")

    _cases(sub.add_parser("cases", help="list, show and update cases"))

    tpl = sub.add_parser("templates", help="check or preview reply templates")
    tsub = tpl.add_subparsers(dest="action", required=True, parser_class=type(tpl))
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
    cfg.add_subparsers(dest="action", required=True, parser_class=type(cfg)).add_parser("show")

    _users(sub.add_parser("users", help="staff console accounts"))

    web = sub.add_parser("web", help="serve the staff console until stopped")
    web.add_argument("--host", help="address to listen on (default: web.host)")
    web.add_argument("--port", type=int, help="port (default: web.port)")
    rules = sub.add_parser("rules", help="measure the sorting rules and model on labelled mail")
    rsub = rules.add_subparsers(dest="action", required=True, parser_class=type(rules))
    rtest = rsub.add_parser("test", help="per-kind precision, recall and confusion matrix on a labelled set")
    rtest.add_argument("--set", metavar="FILE", help="labelled JSONL (default: the development set of the checkout)")
    rtest.add_argument("--json", action="store_true")
    rtest.add_argument("--rules-only", action="store_true", help="without the model: the rule file alone")

    srt = sub.add_parser("sorter", help="rebuild or cross-validate the sorter's model (needs the train extra)")
    ssub = srt.add_subparsers(dest="action", required=True, parser_class=type(srt))
    train = ssub.add_parser("train", help="train the model from labelled mail and write the model file")
    train.add_argument("--set", metavar="FILE", help="labelled JSONL (default: the development set of the checkout)")
    train.add_argument("--with-corrections", action="store_true", help="add the kinds staff set on cases")
    train.add_argument("--out", metavar="FILE", help="where to write the model (default: sorter.model or the shipped one)")
    cv = ssub.add_parser("cv", help="cross-validated figures: each mail sorted by a model trained without it")
    cv.add_argument("--set", metavar="FILE", help="labelled JSONL (default: the development set of the checkout)")
    cv.add_argument("--folds", type=int, default=5, choices=range(2, 21), metavar="N")
    cv.add_argument("--json", action="store_true")

    db = sub.add_parser("db", help="the database schema: upgrade it after installing a new release")
    dsub = db.add_subparsers(dest="action", required=True, parser_class=type(db))
    dsub.add_parser("upgrade", help="bring the database to this release's schema (stop the bot and back up first)")
    dsub.add_parser("current", help="the database's schema revision and whether it is the newest")

    init = sub.add_parser("init", help="write a config, the templates and the rules to edit into a folder")
    init.add_argument("dir", metavar="DIR", help="the folder, e.g. /etc/privacy-bot (made when missing)")
    init.add_argument("--data-dir", default="/var/lib/privacy-bot",
                      help="where the SQLite database goes (the only folder the systemd units let the bot write)")

    demo = sub.add_parser("demo", help="run the whole bot here with its own IMAP and SMTP servers")
    demo.add_argument("--dir", default="demo-data", help="where the demo keeps its SQLite file")
    demo.add_argument("--exit-after", type=float, default=0.0,
                      help="stop after this many seconds once the samples are answered (0: run until Ctrl-C)")
    demo.add_argument("--web-port", type=int, default=8080, help="port of the demo's staff console (0: any free port)")


def _users(users: argparse.ArgumentParser) -> None:
    usub = users.add_subparsers(dest="action", required=True, parser_class=type(users))
    add = usub.add_parser("add", help="create a console account")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "staff", "admin"])
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    usub.add_parser("list", help="the accounts")
    dis = usub.add_parser("disable", help="disable an account (its sessions end)")
    dis.add_argument("name")
    pw = usub.add_parser("password", help="set an account's password (its sessions end)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from standard input")


def _cases(cases: argparse.ArgumentParser) -> None:
    csub = cases.add_subparsers(dest="action", required=True, parser_class=type(cases))
    ls = csub.add_parser("list", help="the cases")
    ls.add_argument("--status", choices=[s.value for s in Status])
    ls.add_argument("--kind", choices=[k.value for k in Kind])
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
    rep = csub.add_parser("reply", help="send the customer a reply from the case (threaded, [REF] in the subject)")
    rep.add_argument("ref")
    text = rep.add_mutually_exclusive_group(required=True)
    text.add_argument("--message", help="the text")
    text.add_argument("--message-stdin", action="store_true", help="read the text from standard input")
    ident = csub.add_parser("identity", help="record the identity check of the documents")
    ident.add_argument("ref")
    check = ident.add_mutually_exclusive_group(required=True)
    check.add_argument("--verified", metavar="DOCUMENT", help="the document that proved it, e.g. \"driver's licence\"")
    check.add_argument("--insufficient", metavar="TEXT",
                       help="what is missing: mailed to the customer; the case waits for new documents")
    out = csub.add_parser("outcome", help="record what the written answer said")
    out.add_argument("ref")
    out.add_argument("--outcome", required=True, choices=[o.value for o in CaseOutcome])
    out.add_argument("--reason", default="", help="the reason the customer was given (refused, partly_done)")
    out.add_argument("--on", help="date (YYYY-MM-DD); default now")
    handled = csub.add_parser("handled", help="the customer's message was read; no reply needed")
    handled.add_argument("ref")
    export = csub.add_parser("export", help="the case's evidence pack (zip)")
    export.add_argument("ref")
    export.add_argument("--out", required=True, metavar="FILE.zip")
    for p in (docs, ext, resp, sk, close, rep, ident, out, handled, export):
        p.add_argument("--as", dest="actor", metavar="NAME", help="who does this, for the case history (default: the OS user)")
