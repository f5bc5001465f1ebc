"""`users add|list|disable|password`: the staff console's accounts."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime
from typing import Any

from bot.core.errors import UsageError
from bot.settings import Settings


def read_password(from_stdin: bool) -> str:
    """The new password: the first line of standard input, or asked twice at the terminal."""
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: standard input held no password")
        return password
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        raise UsageError("the two passwords differ")
    return first


def handle(args: argparse.Namespace, settings: Settings, _hooks: Any) -> int:
    from bot.adapters.store.engine import make_engine
    from bot.staff import accounts

    engine = make_engine(settings.database.url)
    now = datetime.now(UTC)
    if args.action == "add":
        account = accounts.add(engine, args.name, args.role, read_password(args.password_stdin), now=now)
        print(f"account {account.name} added (role {account.role})")
    elif args.action == "password":
        account = accounts.set_password(engine, args.name, read_password(args.password_stdin), now=now)
        print(f"password of {account.name} changed; its open sessions have ended")
    elif args.action == "disable":
        account = accounts.disable(engine, args.name, now=now)
        print(f"account {account.name} disabled; its open sessions have ended")
    else:
        zone = settings.zone
        rows = [("name", "role", "state", "last sign-in", "created")]
        for a in accounts.accounts(engine):
            state = "disabled" if a.disabled else (
                f"waiting until {a.locked_until.astimezone(zone):%Y-%m-%d %H:%M}"
                if a.locked_until is not None and a.locked_until > now else "active")
            rows.append((a.name, a.role, state,
                         f"{a.last_login_at.astimezone(zone):%Y-%m-%d %H:%M}" if a.last_login_at else "-",
                         f"{a.created_at.astimezone(zone):%Y-%m-%d}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
        if len(rows) == 1:
            print("(no accounts: users add NAME --role admin)")
    return 0
