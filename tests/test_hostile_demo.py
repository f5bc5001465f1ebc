"""Issue 10, finding 10: `demo --dir X` deleted X whatever it was, and header text printed as rich markup
could crash the demo (`[/]` in Auto-Submitted)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from sqlmodel import Session

from bot.adapters.store.engine import make_engine
from bot.adapters.store.tables import MessageRow
from bot.core.errors import UsageError
from bot.demo import MARKER, _Reporter, prepare_dir
from tests.botrun import ROOT


def test_demo_refuses_a_dir_it_did_not_make_and_deletes_nothing(tmp_path: Path) -> None:
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "chapter1.tex").write_text("years of work")
    (mine / "data").mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "demo", "--dir", str(mine), "--exit-after", "1"],
                            cwd=ROOT, text=True, capture_output=True, timeout=60, env={**os.environ})
    assert result.returncode == 2, result.stderr[-2000:]
    assert "not made by the demo" in result.stderr
    assert (mine / "chapter1.tex").read_text() == "years of work" and (mine / "data").is_dir()


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("shape", ["new", "empty", "made-by-demo", "foreign", "a-file", "a-symlink"])
def test_prepare_dir(tmp_path: Path, shape: str) -> None:
    target = tmp_path / "demo"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("keep")
    if shape == "empty":
        target.mkdir()
    elif shape == "made-by-demo":
        target.mkdir()
        (target / MARKER).write_text("x")
        (target / "demo.db").write_text("old demo")
    elif shape == "foreign":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif shape == "a-file":
        target.write_text("a file")
    elif shape == "a-symlink":
        target.symlink_to(elsewhere)
    if shape in ("foreign", "a-file", "a-symlink"):
        before = _tree(tmp_path)
        with pytest.raises(UsageError):
            prepare_dir(target)
        assert _tree(tmp_path) == before and (elsewhere / "keep.txt").read_text() == "keep"
        return
    prepare_dir(target)
    assert _tree(target) == [MARKER]  # ready, and marked for the next demo to empty
    prepare_dir(target)  # the next demo with the same --dir
    assert _tree(target) == [MARKER]


def test_header_text_is_printed_as_plain_text(tmp_path: Path) -> None:
    """The sorter's reason quotes headers; rich markup in them (`[/]` closes a style that is not open)
    raised MarkupError and ended the demo. Now it is printed as it is."""
    engine = make_engine(f"sqlite:///{tmp_path}/demo.db")
    with Session(engine) as session:
        session.add(MessageRow(direction="in", message_id="<m@x>", recorded_at=datetime.now(UTC), action="ignored",
                               reason="auto_reply: Auto-Submitted: [/] [bold]x[/bold]", from_addr="[/]@example.com",
                               subject="[red]subject[/]", mailbox_uid=1))
        session.commit()
    out = io.StringIO()
    bot: Any = SimpleNamespace(engine=engine)
    reporter = _Reporter(Console(file=out, width=200, color_system=None), bot)
    reporter.show_new()
    text = out.getvalue()
    assert reporter.count == 1
    assert "from [/]@example.com" in text and "Auto-Submitted: [/] [bold]x[/bold]" in text
    assert "[red]subject[/]" in text
