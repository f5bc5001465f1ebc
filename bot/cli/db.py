"""`db upgrade` and `db current`: the database schema (SPEC section 8).

`db current` only reads the alembic_version table (no Alembic import: it starts as fast as any staff
command). `db upgrade` refuses while a bot leads on the database: a running bot would go on writing
the old layout.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from bot.core.errors import BotError
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.adapters.store.migrations import Upgrade
    from bot.adapters.store.schema import SchemaState

UPGRADE = "privacy-bot db upgrade"


def handle(args: argparse.Namespace, settings: Settings, _hooks: Any) -> int:
    from bot.adapters.store.engine import connect

    engine = connect(settings.database.url)
    try:
        if args.action == "current":
            from bot.adapters.store.schema import read_state

            print(describe(read_state(engine)))
            return 0
        from bot.adapters.locks import Presence
        from bot.adapters.store.migrations import upgrade

        with Presence(engine) as me:
            if not me.try_lead():
                raise BotError("a bot is running on this database (it holds the leader lock): stop every `run` "
                               f"and the console, then run `{UPGRADE}` again; nothing was changed")
            result = upgrade(engine)
        assert result is not None
        print("\n".join(report(result)))
        return 0
    finally:
        engine.dispose()


def describe(state: SchemaState) -> str:
    """`db current`: the recorded revision and whether it is the newest, with what to do if not."""
    from bot.adapters.store.schema import Layout

    if state.layout is Layout.CURRENT:
        return f"{state.revision} (the newest)"
    if state.layout is Layout.OLDER:
        return f"{state.revision} (older: the newest is {state.head}; run `{UPGRADE}`)"
    if state.layout is Layout.UNSTAMPED:
        return (f"none recorded: the tables of an earlier release (6baab05 or before); the newest is {state.head}; "
                f"run `{UPGRADE}`")
    if state.layout is Layout.EMPTY:
        return f"none: the database has no tables yet; `{UPGRADE}` (or `run`) makes them at {state.head}"
    return f"{state.revision} (unknown to this release, whose newest is {state.head}: a newer release upgraded it)"


def report(result: Upgrade) -> list[str]:
    """`db upgrade`: from which revision to which."""
    from bot.adapters.store.schema import BASELINE, Layout

    before = result.before
    if before.layout is Layout.EMPTY:
        return [f"empty database: made the schema at {result.after} (the newest)"]
    lines = []
    start = before.revision
    if result.stamped:
        lines.append(f"no revision recorded: the tables of release 6baab05, recorded as {BASELINE}")
        start = BASELINE
    if start == result.after:
        lines.append(f"already at {result.after} (the newest): nothing to upgrade")
    else:
        lines.append(f"upgraded from {start} to {result.after} (the newest)")
    return lines
