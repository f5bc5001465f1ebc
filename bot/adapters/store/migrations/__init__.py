"""The schema's history as Alembic migrations, shipped in the package and configured here in code
(no alembic.ini): `upgrade` brings a database to the newest revision, `differences` compares a
database with the tables of `bot.adapters.store.tables`. README.md beside this file says how to add
a revision; `python -m bot.adapters.store.migrations --help` is the helper.

All schema work runs in one transaction that holds a lock, so two processes starting on one empty
database make the schema once, and a failed upgrade changes nothing: on PostgreSQL an advisory
lock in a transaction (DDL is transactional there); on SQLite `BEGIN IMMEDIATE` on a connection of
its own with foreign keys off while tables are rebuilt (SQLite's own recipe for schema changes),
checked with `PRAGMA foreign_key_check` before the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool
from sqlmodel import SQLModel

from bot.adapters.store import tables as _tables  # noqa: F401 - registers the tables on SQLModel.metadata
from bot.adapters.store.schema import BASELINE, BASELINE_TABLES, Layout, SchemaState, read_state
from bot.core.errors import BotError, SchemaError

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SCHEMA_LOCK_KEY = 0x5052_5642_5343  # "PRVBSC": held (per transaction) by whoever changes the schema


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for these migrations; env.py runs them on `connection`."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.set_main_option("file_template", "%%(rev)s")  # the file is named by its revision id, e.g. 0002_add_users
    cfg.attributes["connection"] = connection
    return cfg


def comparison_options() -> dict[str, Any]:
    """The options env.py and `differences` give Alembic, so that both compare alike."""
    return {"compare_type": True, "compare_server_default": False}


@dataclass(frozen=True)
class Upgrade:
    before: SchemaState
    after: str  # the revision the database is at now
    stamped: bool  # a database made by release 6baab05 was first stamped as the baseline


@contextmanager
def schema_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that holds the schema lock; commits when the block ends."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            yield conn
        return
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        with engine.connect() as conn, conn.begin():  # one connection, nobody else to wait for
            yield conn
        return
    ddl = create_engine(engine.url, poolclass=NullPool, connect_args={"timeout": 30})
    event.listen(ddl, "connect", _sqlite_manual_transactions)
    event.listen(ddl, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    try:
        with ddl.connect() as conn, conn.begin():
            yield conn
            broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise SchemaError(f"the upgrade would leave {len(broken)} row(s) pointing at missing rows "
                                  f"(first in table {broken[0][0]}); nothing was changed")
    finally:
        ddl.dispose()


def _sqlite_manual_transactions(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.isolation_level = None  # the driver opens no transaction of its own: BEGIN IMMEDIATE does
    dbapi_conn.execute("PRAGMA foreign_keys=OFF")  # rebuilding a table must not delete or check its children


def upgrade(engine: Engine, *, only_if_empty: bool = False) -> Upgrade | None:
    """Bring the database to the newest revision; with `only_if_empty`, only a database with none of
    the bot's tables (and then return None if it had some by the time the lock was taken)."""
    before: SchemaState | None = None
    try:
        with schema_transaction(engine) as conn:
            before = read_state(conn)
            if only_if_empty and before.layout is not Layout.EMPTY:
                return None
            if before.layout is Layout.UNKNOWN:
                raise SchemaError(before.problem() or "unknown revision")
            cfg = alembic_config(conn)
            stamped = before.layout is Layout.UNSTAMPED
            if stamped:
                mismatch = baseline_mismatch(conn)
                if mismatch:
                    raise SchemaError("the database has the bot's tables but not the layout of release 6baab05 "
                                      f"({'; '.join(mismatch[:5])}): it was made by a development version; "
                                      "nothing was changed")
                command.stamp(cfg, BASELINE)
            command.upgrade(cfg, "head")
            after = read_state(conn)
    except BotError:
        raise
    except Exception as exc:  # a migration failed: the transaction is rolled back, say so without SQL or values
        start = "an empty database" if before is None or before.layout is Layout.EMPTY else (
            before.revision or f"release 6baab05 ({BASELINE})")
        raise BotError(f"the schema upgrade from {start} failed ({_safe(exc)}); nothing was changed") from None
    if before.layout is Layout.EMPTY:
        log.info("schema made at revision %s", after.revision)
    elif before.revision != after.revision:
        log.info("schema upgraded from %s to %s", before.revision or f"release 6baab05 ({BASELINE})", after.revision)
    return Upgrade(before, after.revision or "", stamped)


def _safe(exc: BaseException) -> str:
    """The error's kind and first line: a database's first line names the constraint, not the values."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    first = (str(inner).strip().splitlines() or [""])[0][:200]
    return f"{type(inner).__name__}: {first}" if first else type(inner).__name__


def create_schema(engine: Engine) -> None:
    """First start: make the schema at the newest revision, unless someone else has made tables meanwhile."""
    upgrade(engine, only_if_empty=True)


def baseline_columns() -> dict[str, set[str]]:
    """Each baseline table with its column names, as the baseline revision makes them."""
    scratch = create_engine("sqlite://")
    try:
        with scratch.connect() as conn, conn.begin():
            command.upgrade(alembic_config(conn), BASELINE)
            found = inspect(conn)
            return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names() if t in BASELINE_TABLES}
    finally:
        scratch.dispose()


def baseline_mismatch(conn: Connection) -> list[str]:
    """How an unstamped database differs from the baseline's tables and columns (empty: it matches)."""
    found = inspect(conn)
    tables = set(found.get_table_names())
    problems: list[str] = []
    for table, columns in sorted(baseline_columns().items()):
        if table not in tables:
            problems.append(f"no table {table}")
            continue
        have = {c["name"] for c in found.get_columns(table)}
        problems += [f"no column {table}.{c}" for c in sorted(columns - have)]
        problems += [f"an unknown column {table}.{c}" for c in sorted(have - columns)]
    return problems


def differences(bind: Engine | Connection) -> list[Any]:
    """What Alembic's autogenerate finds between the database and the tables in the code ([]: they agree)."""
    if isinstance(bind, Engine):
        with bind.connect() as conn:
            return differences(conn)
    context = MigrationContext.configure(bind, opts={**comparison_options(), "target_metadata": SQLModel.metadata})
    return list(compare_metadata(context, SQLModel.metadata))
