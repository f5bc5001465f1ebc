"""The staff digest from a seeded database: sections, text and HTML carry the same cases, HTML escaped."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.digest import build_digest, render_digest
from bot.store import CaseRow, MessageRow, make_engine, transaction
from tests.botrun import ROOT, write_config

TOKYO = ZoneInfo("Asia/Tokyo")
AS_OF = datetime(2026, 12, 20, 9, 0, tzinfo=TOKYO)


def case(ref: str, status: str, opened_days_ago: float, *, due_in: float | None = None, kinds: str = "disclosure",
         requester: str = "a@example.com", responded_ago: float | None = None, flags: str = "") -> CaseRow:
    opened = AS_OF - timedelta(days=opened_days_ago)
    return CaseRow(ref=ref, status=status, kinds=kinds, requester=requester, language="en", opened_at=opened,
                   updated_at=opened, flags=flags, due_at=AS_OF + timedelta(days=due_in) if due_in is not None else None,
                   responded_at=AS_OF - timedelta(days=responded_ago) if responded_ago is not None else None)


SEED = [
    case("PRV-2026-00001", "in_progress", 30, due_in=-2),
    case("PRV-2026-00002", "in_progress", 20, due_in=2, kinds="deletion"),
    case("PRV-2026-00003", "awaiting_documents", 10, kinds="amendment", flags="dmarc_fail"),
    case("PRV-2026-00004", "needs_staff", 0.5, kinds="general", requester="<script>x</script>@evil.example"),
    case("PRV-2026-00005", "responded", 40, due_in=-5, responded_ago=0.2),
]
QUARANTINE = [MessageRow(direction="in", message_id="<q@x>", recorded_at=AS_OF - timedelta(hours=2),
                         action="quarantined", reason="could not parse <b>bold</b>", mailbox_uid=77)]


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_sections_and_parts_agree() -> None:
    digest = build_digest(SEED, QUARANTINE, as_of=AS_OF, since=AS_OF - timedelta(days=1), zone=TOKYO)
    assert [l.ref for l in digest.overdue] == ["PRV-2026-00001"]
    assert [l.ref for l in digest.due_soon] == ["PRV-2026-00002"]
    assert [(l.ref, l.days) for l in digest.awaiting] == [("PRV-2026-00003", 10)]
    assert [l.ref for l in digest.needs_staff] == ["PRV-2026-00004"]
    assert [l.ref for l in digest.new] == ["PRV-2026-00004"]
    assert [l.ref for l in digest.responded] == ["PRV-2026-00005"]
    assert [q.uid for q in digest.quarantined] == [77]
    for lang in ("en", "ja"):
        subject, text, html = render_digest(digest, lang, ROOT / "templates")
        assert "1" in subject and "PRV" not in subject
        text_refs = set(re.findall(r"PRV-2026-\d{5}", text))
        parser = _Cells()
        parser.feed(html)
        html_refs = set(re.findall(r"PRV-2026-\d{5}", " ".join(parser.text)))
        assert text_refs == html_refs == {f"PRV-2026-0000{i}" for i in range(1, 6)}
        assert text.index("PRV-2026-00001") < text.index("PRV-2026-00002") < text.index("PRV-2026-00003")
        assert "<script>" not in html and "&lt;script&gt;" in html and "<b>bold" not in html
        assert "script" not in parser.tags
        assert "[dmarc_fail]" in next(l for l in text.splitlines() if "PRV-2026-00003" in l)
        assert "dmarc_fail" in html


def test_digest_print_as_of_from_the_command_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/bot.db"
    engine = make_engine(db)
    with transaction(engine) as session:
        for row in SEED:
            session.add(CaseRow.model_validate(row.model_dump()))
    engine.dispose()
    cfg = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=db)
    r = subprocess.run([sys.executable, "run_bot.py", "--config", str(cfg), "digest", "--print", "--as-of",
                        AS_OF.astimezone(timezone.utc).isoformat()], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    overdue_block = r.stdout.split("OVERDUE (1)")[1].split("NOT ACKNOWLEDGED")[0]
    assert "PRV-2026-00001" in overdue_block and "PRV-2026-00002" not in overdue_block


def test_cases_not_acknowledged_within_target_are_listed() -> None:
    acked = frozenset({"PRV-2026-00001", "PRV-2026-00002", "PRV-2026-00005"})
    digest = build_digest(SEED, [], as_of=AS_OF, since=AS_OF - timedelta(days=1), zone=TOKYO,
                          acknowledged=acked, ack_target_hours=1)
    assert [l.ref for l in digest.unacknowledged] == ["PRV-2026-00003", "PRV-2026-00004"]
    late_target = build_digest(SEED, [], as_of=AS_OF, since=AS_OF, zone=TOKYO, acknowledged=acked,
                               ack_target_hours=24)  # 00004 opened 12 hours ago: not late yet
    assert [l.ref for l in late_target.unacknowledged] == ["PRV-2026-00003"]
    _, text, _ = render_digest(digest, "en", ROOT / "templates")
    block = text.split("NOT ACKNOWLEDGED WITHIN TARGET (2)")[1].split("DUE WITHIN")[0]
    assert "PRV-2026-00003" in block and "PRV-2026-00001" not in block
