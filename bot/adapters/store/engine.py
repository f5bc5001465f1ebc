"""The engine and transactions. SQLite files get their folder made and WAL turned on.

Every engine hides SQL parameters from its errors (`hide_parameters`): a database error's text can
reach a log, and the parameters are mail addresses, subjects and bodies. A SQLite file the bot makes
is 0600 in a folder the bot makes 0700 (an admin's existing folder is left as it is), and every
connection turns on `secure_delete`, so erased data is overwritten rather than left in free space.

`make_engine` is how the bot opens its database: a database with none of the bot's tables (a first
start) gets the schema made by the migrations; one at an older schema is refused, never changed:
`privacy-bot db upgrade` does that, on purpose (bot.cli.db). `connect` opens without looking.

Nothing here imports SQLModel or the ORM tables until a session is asked for (`transaction`), so a
staff command that only reads through Core starts 0.1 s sooner.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event

from bot.adapters.store.schema import Layout, SchemaState, read_state
from bot.core.errors import SchemaError

if TYPE_CHECKING:
    from sqlmodel import Session


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
    kwargs: dict[str, Any] = {"hide_parameters": True}  # errors never carry addresses, subjects, bodies
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:" and not path.startswith("file:"):
            _private_file(Path(path.split("?", 1)[0]))
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _private_file(path: Path) -> None:
    """Make the database's folder (0700) and file (0600) when they are not there yet; SQLite makes the
    -wal and -shm files with the database file's mode. An existing folder or file is left as it is."""
    if not path.parent.exists():
        old = os.umask(0o077)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        finally:
            os.umask(old)
    if not path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:  # another process made it a moment ago
            pass


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten with zeros, not left in free pages
    _wal(cur)
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _wal(cur: Any, tries: int = 200) -> None:
    """WAL mode. While another connection makes the schema of a new database (the first start of two
    processes), SQLite answers this pragma "database is locked" at once instead of waiting its busy
    timeout; the schema work takes a moment, so ask again for up to about ten seconds."""
    for attempt in range(tries):
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == tries - 1:
                raise
            time.sleep(0.05)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def trouble(exc: BaseException) -> str:
    """A database error as a log may show it: the driver's error class and the database's own one-line
    reason (PostgreSQL's primary message, SQLite's text), never the statement, its parameters or the
    server's DETAIL (which quotes row values)."""
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    reason = primary if primary is not None else ("" if diag is not None else str(orig).split("\n", 1)[0])
    reason = _QUOTED_VALUE.sub('"…"', reason)[:200]  # names of tables and constraints stay, quoted values go
    return f"{type(orig).__name__}: {reason}" if reason else type(orig).__name__


_QUOTED_VALUE = re.compile(r'"(?![A-Za-z_][\w.$]*")[^"]*"')
