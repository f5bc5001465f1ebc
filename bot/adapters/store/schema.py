"""Which schema a database is at, read without importing Alembic (staff commands start fast).

The revisions in `migrations/versions/` are the schema's history; a database records where it is
in Alembic's table `alembic_version`. A database made by release 6baab05 (or earlier) has the
bot's tables but no `alembic_version`: `privacy-bot db upgrade` recognises it, checks its layout
and stamps it as the baseline revision before upgrading.

`judge` is the decision (a pure function of the table names, the recorded revision and the
history); `read_state` gathers its inputs from a database.
"""

from __future__ import annotations

import ast
import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from bot.core.errors import SchemaError

VERSIONS = Path(__file__).parent / "migrations" / "versions"
VERSION_TABLE = "alembic_version"
BASELINE = "0001_release_6baab05"  # the schema of release 6baab05, made by create_all before migrations
# The tables of release 6baab05: a database holding any of them but no revision was made by it (or earlier).
BASELINE_TABLES = frozenset({"cases", "messages", "events", "mailbox_cursor", "mailbox_ledger", "outbox", "counters"})
UPGRADE_COMMAND = "privacy-bot db upgrade"


class Layout(enum.StrEnum):
    EMPTY = "empty"  # none of the bot's tables: a first start makes the schema
    CURRENT = "current"  # at this release's newest revision
    OLDER = "older"  # at a revision this release knows, before the newest
    UNSTAMPED = "unstamped"  # the bot's tables without a revision: made by release 6baab05 or earlier
    UNKNOWN = "unknown"  # at a revision this release does not know: made by a newer release


@dataclass(frozen=True)
class History:
    """Each revision with the revisions it follows (`down_revision`)."""

    parents: Mapping[str, tuple[str, ...]]

    @property
    def heads(self) -> tuple[str, ...]:
        followed = {p for downs in self.parents.values() for p in downs}
        return tuple(sorted(r for r in self.parents if r not in followed))

    @property
    def head(self) -> str:
        heads = self.heads
        if len(heads) != 1:
            raise SchemaError(f"the migrations have {len(heads)} newest revisions ({', '.join(heads) or 'none'}); "
                              "two branches each added one: give one of them the other as down_revision")
        return heads[0]


@dataclass(frozen=True)
class SchemaState:
    layout: Layout
    revision: str | None  # as recorded in alembic_version (None: nothing recorded)
    head: str  # this release's newest revision

    def problem(self) -> str | None:
        """Why this release cannot work with the database as it is, naming what to do; None when it can."""
        if self.layout is Layout.CURRENT:
            return None
        if self.layout is Layout.EMPTY:
            return f"the database has no tables yet: run `{UPGRADE_COMMAND}` (or `run`, which makes them)"
        if self.layout is Layout.UNSTAMPED:
            return ("the database was made by an earlier release (no schema revision recorded; this release needs "
                    f"{self.head}): stop the bot, back up the database, then run `{UPGRADE_COMMAND}`")
        if self.layout is Layout.OLDER:
            return (f"the database schema is at revision {self.revision}, older than this release's {self.head}: "
                    f"stop the bot, back up the database, then run `{UPGRADE_COMMAND}`")
        return (f"the database schema is at revision {self.revision}, which this release does not know (newest here: "
                f"{self.head}); it was upgraded by a newer release: run that release, or restore the backup "
                f"taken before `{UPGRADE_COMMAND}`")


def judge(tables: frozenset[str], recorded: tuple[str, ...], history: History) -> SchemaState:
    """Where a database stands: its table names, the revisions in its alembic_version, the history."""
    head = history.head
    if not recorded:
        layout = Layout.UNSTAMPED if tables & BASELINE_TABLES else Layout.EMPTY
        return SchemaState(layout, None, head)
    shown = ",".join(recorded)
    if recorded == (head,):
        return SchemaState(Layout.CURRENT, shown, head)
    if len(recorded) == 1 and recorded[0] in history.parents:  # one head: every other revision comes before it
        return SchemaState(Layout.OLDER, shown, head)
    return SchemaState(Layout.UNKNOWN, shown, head)


def read_state(bind: Engine | Connection, history: History | None = None) -> SchemaState:
    """The database's state: a look at its table names and its alembic_version row, no Alembic."""
    history = history or read_history()
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return read_state(conn, history)
    tables = frozenset(inspect(bind).get_table_names())
    recorded: tuple[str, ...] = ()
    if VERSION_TABLE in tables:
        recorded = tuple(sorted(bind.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()))
    return judge(tables, recorded, history)


@functools.cache
def read_history(directory: Path = VERSIONS) -> History:
    """The revisions as the files in `directory` declare them (module-level `revision`, `down_revision`)."""
    parents: dict[str, tuple[str, ...]] = {}
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("__"):
            continue
        names: dict[str, object] = {}
        for node in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                names[target.id] = ast.literal_eval(value)
        revision, down = names.get("revision"), names.get("down_revision")
        if not isinstance(revision, str):
            raise SchemaError(f"migration file {path.name} declares no `revision = \"...\"`")
        downs = (down,) if isinstance(down, str) else tuple(down) if isinstance(down, tuple | list) else ()
        parents[revision] = tuple(str(d) for d in downs)
    return History(parents)
