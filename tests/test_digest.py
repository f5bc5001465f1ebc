"""The staff digest from a seeded database: sections, text and HTML carry the same cases, HTML escaped."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.adapters.store import outbox
from bot.adapters.store.cases import digest_facts
from bot.adapters.store.engine import make_engine, transaction
from bot.adapters.store.tables import CaseRow, MessageRow, OutboxRow
from bot.compose.notices import StaffTemplates
from bot.core.digest import Digest, build_digest
from bot.core.model import Delivery
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


def seeded(url: str, cases: list[CaseRow], *, acked: tuple[str, ...] = ()) -> Engine:
    """A database holding copies of `cases`, the quarantined mail, and sent acknowledgements for `acked`."""
    engine = make_engine(url)
    with transaction(engine) as session:
        for row in cases:
            copy = CaseRow.model_validate(row.model_dump())
            if copy.ref in acked:
                copy.acknowledged_at = AS_OF  # as store.outbox.record sets it when the ack is sent
            session.add(copy)
            session.flush()
            if copy.ref in acked:
                session.add(OutboxRow(case_id=copy.id, purpose="ack", message_id=f"<{copy.ref}.ack@x>", to_addr="a@x",
                                      raw=b"x", status="sent", next_attempt_at=AS_OF, created_at=AS_OF))
        for m in QUARANTINE:
            session.add(MessageRow.model_validate(m.model_dump()))
    return engine


def render_digest(digest: Digest, lang: str, templates: Path) -> tuple[str, str, str]:
    return StaffTemplates(templates, lang).digest(digest)


def digest_of(engine: Engine, *, since: datetime = AS_OF - timedelta(days=1), ack_target_hours: int = 1,
              limit: int = 50) -> Digest:
    facts = digest_facts(engine, as_of=AS_OF, since=since, ack_target_hours=ack_target_hours, limit=limit)
    return build_digest(facts, as_of=AS_OF, since=since, zone=TOKYO)


def test_sections_and_parts_agree(db_url: str) -> None:
    engine = seeded(db_url, SEED, acked=tuple(c.ref for c in SEED))
    digest = digest_of(engine)
    engine.dispose()
    assert [l.ref for l in digest.overdue] == ["PRV-2026-00001"]
    assert [l.ref for l in digest.due_soon] == ["PRV-2026-00002"]
    assert [(l.ref, l.days) for l in digest.awaiting] == [("PRV-2026-00003", 10)]
    assert [l.ref for l in digest.needs_staff] == ["PRV-2026-00004"]
    assert [l.ref for l in digest.new] == ["PRV-2026-00004"]
    assert [l.ref for l in digest.responded] == ["PRV-2026-00005"]
    assert [q.uid for q in digest.quarantined] == [77]
    assert digest.unacknowledged.total == 0
    assert dict(digest.counts) == {"disclosure": 1, "amendment": 1, "deletion": 1, "general": 1}
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
                        AS_OF.astimezone(UTC).isoformat()], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    overdue_block = r.stdout.split("OVERDUE (1)")[1].split("NOT ACKNOWLEDGED")[0]
    assert "PRV-2026-00001" in overdue_block and "PRV-2026-00002" not in overdue_block


def test_cases_not_acknowledged_within_target_are_listed(tmp_path: Path) -> None:
    engine = seeded(f"sqlite:///{tmp_path}/bot.db", SEED, acked=("PRV-2026-00001", "PRV-2026-00002", "PRV-2026-00005"))
    digest = digest_of(engine)
    assert [l.ref for l in digest.unacknowledged] == ["PRV-2026-00003", "PRV-2026-00004"]
    late_target = digest_of(engine, since=AS_OF, ack_target_hours=24)  # 00004 opened 12 hours ago: not late yet
    engine.dispose()
    assert [l.ref for l in late_target.unacknowledged] == ["PRV-2026-00003"]
    _, text, _ = render_digest(digest, "en", ROOT / "templates")
    block = text.split("NOT ACKNOWLEDGED WITHIN TARGET (2)")[1].split("DUE WITHIN")[0]
    assert "PRV-2026-00003" in block and "PRV-2026-00001" not in block


def test_long_sections_show_the_most_urgent_lines_and_count_the_rest(tmp_path: Path) -> None:
    many = [case(f"PRV-2026-{i:05d}", "in_progress", 40, due_in=-i) for i in range(1, 8)]
    engine = seeded(f"sqlite:///{tmp_path}/bot.db", many)
    digest = digest_of(engine, limit=3)
    engine.dispose()
    assert [l.ref for l in digest.overdue] == ["PRV-2026-00007", "PRV-2026-00006", "PRV-2026-00005"]  # longest overdue
    assert (digest.overdue.total, digest.overdue.more) == (7, 4)
    for lang, more in (("en", "and 4 more"), ("ja", "ほか 4件")):
        subject, text, html = render_digest(digest, lang, ROOT / "templates")
        assert "7" in subject
        assert more in text.split("PRV-2026-00005")[1] and more in html


def test_cases_list_shows_the_newest_and_says_how_many_there_are(tmp_path: Path) -> None:
    many = [case(f"PRV-2026-{i:05d}", "awaiting_documents", 400 - i) for i in range(1, 251)]
    url = f"sqlite:///{tmp_path}/bot.db"
    seeded(url, many).dispose()
    cfg = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=url)

    def run(*args: str) -> str:
        r = subprocess.run([sys.executable, "run_bot.py", "--config", str(cfg), "cases", "list", *args], cwd=ROOT,
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        return r.stdout

    table = run()
    assert table.startswith("250 case(s), the newest 200 shown") and "PRV-2026-00250" in table
    assert "PRV-2026-00050" not in table and "PRV-2026-00051" in table
    assert run("--all").startswith("250 case(s)\n") and "PRV-2026-00001" in run("--all")
    assert len(json.loads(run("--json"))) == 250
    assert [c["ref"] for c in json.loads(run("--json", "--limit", "2"))] == ["PRV-2026-00249", "PRV-2026-00250"]


@pytest.mark.parametrize(("purpose", "delivery", "stamped"), [
    ("ack", Delivery.SENT, True),
    ("ack", Delivery.FAILED, False),  # refused for good: still not acknowledged, the digest lists it
    ("ack", Delivery.UNCERTAIN, False),  # may have been delivered: staff check it, the digest lists it
    ("reminder14", Delivery.SENT, False),  # only the acknowledgement counts
])
def test_the_case_is_acknowledged_when_its_acknowledgement_is_sent(db_url: str, purpose: str, delivery: Delivery,
                                                                    stamped: bool) -> None:
    """The digest reads cases.acknowledged_at (0005_digest_speed); the outbox sets it as the ack's 250 is recorded."""
    engine = make_engine(db_url)
    with transaction(engine) as session:
        row = CaseRow.model_validate(SEED[2].model_dump())
        session.add(row)
        session.flush()
        mail = OutboxRow(case_id=row.id, purpose=purpose, message_id="<m@x>", to_addr="a@example.com", raw=b"x",
                         status=Delivery.CLAIMED.value, claimed_by="w1", next_attempt_at=AS_OF, created_at=AS_OF)
        session.add(mail)
        session.flush()
        key = mail.id
    assert key is not None
    sent_at = AS_OF + timedelta(minutes=1)
    assert outbox.record(engine, key, lambda _row: (delivery, "", None, ""), sent_at) is delivery
    later = AS_OF + timedelta(days=3)
    with transaction(engine) as session:
        got = session.exec(select(CaseRow)).one()
    facts = digest_facts(engine, as_of=later, since=later - timedelta(days=1), ack_target_hours=24, limit=50)
    engine.dispose()
    assert got.acknowledged_at == (sent_at if stamped else None)
    assert [c.ref for c in facts.sections["unacknowledged"][0]] == ([] if stamped else ["PRV-2026-00003"])
