"""The intake shell against a real database (SQLite and PostgreSQL), fed bytes as IMAP hands them out."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.adapters.imap import Fetched
from bot.adapters.store.engine import make_engine
from bot.adapters.store.tables import CaseRow, EventRow, LedgerRow, MessageRow, OutboxRow
from bot.app.intake import Intake
from bot.app.mailing import Mailing
from bot.compose.templates import Renderer
from bot.settings import load_rules, load_settings
from tests.botrun import ROOT, write_config
from tests.factories import mail_bytes

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
BOX = "bot@127.0.0.1:10143/INBOX"


@pytest.fixture
def intake(tmp_path: Path, db_url: str) -> Iterator[Intake]:
    settings = load_settings(write_config(tmp_path, imap_port=10143, smtp_port=10025, db_url=db_url))
    engine = make_engine(db_url)
    yield Intake(Mailing(settings, Renderer(ROOT / "templates")), engine, load_rules(ROOT / "config" / "rules.toml"))
    engine.dispose()


def take(intake: Intake, uid: int, raw: bytes, now: datetime = NOW):
    return intake.take_in(BOX, 1, Fetched(uid, raw, len(raw), False), now)


def rows(intake: Intake, model):
    with Session(intake.engine) as s:
        return list(s.exec(select(model)).all())


def test_corpus_is_taken_in_without_crash_and_no_reply_holds(intake: Intake, corpus_dir: Path) -> None:
    with (corpus_dir / "MANIFEST.tsv").open(encoding="utf-8") as fh:
        manifest = list(csv.DictReader(fh, delimiter="\t"))
    outcomes = {}
    for uid, row in enumerate(manifest, 1):
        outcomes[row["file"]] = take(intake, uid, (corpus_dir / row["file"]).read_bytes())
    assert len(rows(intake, LedgerRow)) == len(manifest)  # every mail recorded, none dropped
    replied_to = {o.uid for o in outcomes.values() if o.replied}
    for uid, row in enumerate(manifest, 1):
        outcome = outcomes[row["file"]]
        assert outcome.action, row["file"]
        if row["expected_bot_behaviour"].startswith("no_reply"):
            assert uid not in replied_to, (row["file"], outcome)
            assert outcome.action in ("ignored", "duplicate", "quarantined", "follow_up"), (row["file"], outcome)
    assert len(rows(intake, OutboxRow)) == len(replied_to)


def test_same_message_id_twice_is_one_case_one_reply(intake: Intake) -> None:
    raw = mail_bytes(sender="ruth@example.com", subject="My data", message_id="<same@x>",
                     body="Please send me a copy of my personal data.")
    first, second = take(intake, 1, raw), take(intake, 2, raw)
    assert (first.action, first.replied) == ("new_case", True)
    assert second.action == "duplicate" and not second.replied
    assert len(rows(intake, CaseRow)) == 1 and len(rows(intake, OutboxRow)) == 1
    assert take(intake, 1, raw).already  # the same UID again does nothing at all


def test_reply_cap_per_sender_records_every_mail(intake: Intake) -> None:
    outcomes = [
        take(intake, i, mail_bytes(sender="flood@example.com", subject=f"Data {i}", message_id=f"<f{i}@x>",
                                   body="Please delete my personal data."), NOW + timedelta(minutes=i))
        for i in range(1, 51)
    ]
    assert sum(o.replied for o in outcomes) == 3
    assert len(rows(intake, CaseRow)) == 50 and len(rows(intake, LedgerRow)) == 50
    withheld = [e for e in rows(intake, EventRow) if e.kind == "reply_withheld"]
    assert len(withheld) == 47 and "cap" in withheld[0].detail
    # a day later the sender can be answered again
    later = take(intake, 51, mail_bytes(sender="flood@example.com", subject="again", message_id="<f51@x>",
                                        body="Please delete my personal data."), NOW + timedelta(hours=25))
    assert later.replied


def test_threading_by_reference_and_by_in_reply_to(intake: Intake) -> None:
    first = take(intake, 1, mail_bytes(sender="ruth@example.com", subject="My data", message_id="<a@x>",
                                       body="Please send me a copy of my personal data."))
    ack_id = rows(intake, OutboxRow)[0].message_id
    by_ref = take(intake, 2, mail_bytes(sender="ruth@example.com", subject=f"Re: [{first.ref.lower()}] thanks",
                                        message_id="<b@x>", body="ok"))
    by_header = take(intake, 3, mail_bytes(sender="Ruth+2@Example.com", subject="Re: hello", message_id="<c@x>",
                                           body="Please delete my data", headers={"In-Reply-To": ack_id}))
    assert (by_ref.action, by_ref.ref, by_ref.replied) == ("follow_up", first.ref, False)
    assert (by_header.action, by_header.ref, by_header.replied) == ("follow_up", first.ref, False)
    assert len(rows(intake, CaseRow)) == 1 and len(rows(intake, OutboxRow)) == 1
    assert rows(intake, CaseRow)[0].flags == ""  # both from the requester (normalised): no flag
    assert "PRV" not in ack_id and first.ref not in ack_id  # the bot's Message-ID says nothing about the case


def test_only_the_requester_joins_a_case_anyone_else_gets_their_own(intake: Intake) -> None:
    """Issue 10, finding 4: "Fwd: [PRV-...] deletion request" or an answer to the case's mail from
    another address opens a case of its own (acknowledged), flagged with the reference it mentioned."""
    first = take(intake, 1, mail_bytes(sender="ruth@example.com", subject="My data", message_id="<a@x>",
                                       body="Please send me a copy of my personal data."))
    ack_id = rows(intake, OutboxRow)[0].message_id
    fwd = take(intake, 2, mail_bytes(sender="hana@example.net", subject=f"Fwd: [{first.ref}] deletion request",
                                     message_id="<b@x>", body="Please delete my personal data."))
    answer = take(intake, 3, mail_bytes(sender="other@example.org", subject="Re: hello", message_id="<c@x>",
                                        body="Please delete my personal data.", headers={"In-Reply-To": ack_id}))
    for outcome in (fwd, answer):
        assert (outcome.action, outcome.replied) == ("new_case", True) and outcome.ref != first.ref
    cases = {c.ref: c for c in rows(intake, CaseRow)}
    assert len(cases) == 3 and cases[first.ref].flags == ""
    for outcome in (fwd, answer):
        assert cases[outcome.ref].flags == "mentions_other_case"
        assert f"mentions {first.ref}" in outcome.reason
    assert sorted(o.to_addr for o in rows(intake, OutboxRow)) == ["hana@example.net", "other@example.org",
                                                                  "ruth@example.com"]


def test_bodies_are_not_kept_by_default(intake: Intake) -> None:
    take(intake, 1, mail_bytes(sender="ruth@example.com", subject="My data", message_id="<a@x>",
                               body="Please send me a copy of my personal data. SECRET-BODY-TEXT"))
    assert all(m.body is None for m in rows(intake, MessageRow))


def test_unparsable_mail_is_quarantined_not_dropped(intake: Intake) -> None:
    outcome = take(intake, 1, b"")
    assert outcome.action == "quarantined" and outcome.reason
    [msg] = rows(intake, MessageRow)
    assert msg.action == "quarantined" and msg.reason and msg.mailbox_uid == 1
