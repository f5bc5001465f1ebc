"""The engine and transactions. SQLite files get their folder made and WAL turned on.

`make_engine` is how the bot opens its database: a database with none of the bot's tables (a first
start) gets the schema made by the migrations; one at an older schema is refused, never changed:
`privacy-bot db upgrade` does that, on purpose (bot.cli.db). `connect` opens without looking.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, create_engine

from bot.adapters.store import tables as _tables  # noqa: F401 - registers the tables on SQLModel.metadata
from bot.adapters.store.schema import Layout, SchemaState, read_state
from bot.core.errors import SchemaError


def make_engine(url: str) -> Engine:
    """An engine on a database at this release's schema, made first if the database is empty.

    Raises SchemaError (its message names `privacy-bot db upgrade`) for a database made by an
    earlier release, or upgraded by a newer one."""
    engine = connect(url)
    try:
        state = read_state(engine)
        if state.layout is Layout.EMPTY:
            from bot.adapters.store.migrations import create_schema  # Alembic is imported only here

            create_schema(engine)
            state = read_state(engine)
        _require(state)
    except BaseException:
        engine.dispose()
        raise
    return engine


def require_current_schema(engine: Engine) -> None:
    """Raise SchemaError, naming the command that fixes it, unless the database is at this release's schema."""
    _require(read_state(engine))


def _require(state: SchemaState) -> None:
    problem = state.problem()
    if problem:
        raise SchemaError(problem)


def connect(url: str) -> Engine:
    """An engine, the schema untouched. SQLite files get their folder made and WAL turned on."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
