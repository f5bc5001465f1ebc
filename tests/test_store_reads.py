"""The staff views read through Core alone (bot.adapters.store.reads): its tables name columns that the
ORM tables (the one definition of the schema) really have, and `cases list` / `digest --print` start
without importing SQLModel or the ORM classes (issue 14: staff commands start in under 0.5 s)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from bot.adapters.store import tables  # noqa: F401 - the ORM tables on SQLModel.metadata
from bot.adapters.store.reads import LIGHT_TABLES
from bot.adapters.store.types import UTCDateTime
from tests.botrun import ROOT, bot, write_config


@pytest.mark.parametrize("light", LIGHT_TABLES, ids=lambda t: t.name)
def test_every_column_read_is_a_column_of_the_orm_table(light: object) -> None:
    real = SQLModel.metadata.tables[light.name]  # type: ignore[attr-defined]
    for col in light.c:  # type: ignore[attr-defined]
        assert col.name in real.c, f"{light.name}.{col.name} is not a column of the ORM table"  # type: ignore[attr-defined]
        real_type = real.c[col.name].type
        assert _python_type(col.type) is _python_type(real_type), (light.name, col.name, real_type)
        # datetimes must come back aware: the same TypeDecorator on both sides
        assert isinstance(col.type, UTCDateTime) is isinstance(real_type, UTCDateTime), (light.name, col.name)


def _python_type(sql_type: Any) -> type:
    """What a column's values are in Python (SQLModel's AutoString says `object`: ask what it wraps)."""
    found = sql_type.python_type
    if found is object and isinstance(sql_type, TypeDecorator):
        return _python_type(sql_type.impl_instance)
    return found  # type: ignore[no-any-return]


PROBE = """
import sys
from bot.cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("sqlmodel", "bot.adapters.store.tables", "bot.adapters.store.outbox", "alembic")
               if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("command", [("cases", "list"), ("cases", "list", "--json"), ("digest", "--print")])
def test_staff_views_start_without_the_orm(tmp_path: Path, command: tuple[str, ...]) -> None:
    config = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=f"sqlite:///{tmp_path}/bot.db")
    assert bot(config, "db", "upgrade").returncode == 0  # the schema exists: the view only reads
    done = subprocess.run([sys.executable, "-c", PROBE, "--config", str(config), *command], cwd=ROOT, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY=\n" in done.stderr, done.stderr[-500:]
    if "--json" in command:
        assert json.loads(done.stdout) == []
