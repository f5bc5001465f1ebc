"""Issue 10, finding 5: after a purge no personal data of the purged cases is left in the database, in
any table (SQLite and PostgreSQL, asserted by SQL), nor in the SQLite files' bytes (the file, -wal, -shm).

The data is made the way the bot makes it: mail taken in by the intake (a request, a follow-up, a mail
from another sender answering the case, a duplicate, an auto-reply, a quarantined one), replies and a
staff digest sent to a real SMTP sink (one refused with 550 quoting the recipient), staff actions whose
reasons hold phone numbers, a sorter correction keeping the inquiry's words.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlmodel import Session, SQLModel

from bot.adapters.imap import Fetched
from bot.adapters.locks import Presence
from bot.adapters.smtp import Mailer
from bot.adapters.store import retention
from bot.adapters.store.engine import make_engine, transaction
from bot.adapters.store.retention import TABLES, message_key, purge, wipe
from bot.adapters.store.tables import CaseRow, CorrectionRow, EventRow, LedgerRow, MessageRow, OutboxRow
from bot.app.digest_job import queue_digest
from bot.app.intake import Intake
from bot.app.mailing import Mailing
from bot.app.notify import Notifier
from bot.app.outbox import flush
from bot.compose.templates import Renderer
from bot.core import lifecycle
from bot.settings import Settings, load_rules, load_settings
from bot.staff import actions
from tests.botrun import ROOT, write_config
from tests.factories import mail_bytes

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=400)
BOX = "bot@127.0.0.1:10143/INBOX"
ALICE = "alice.req@example.com"
OTHER = "mallory.other@example.net"
NEEDLES = (ALICE, "Alice Requester", "ALICE-SUBJ", "ALICE-BODY", "03-5555-0101", "090-8765-4321", OTHER,
           "MALLORY-SUBJ", "bounce.person@example.org", "IGN-SUBJ", "quar.person@example.com", "QUAR-SUBJ",
           "alice-1@customer.test", "STAFF-REPLY-TEXT")


@dataclass
class World:
    settings: Settings
    engine: Engine
    takes: int


def test_every_table_has_a_retention_rule() -> None:
    """A new table must say what the purge does with it (bot/adapters/store/retention.py TABLES)."""
    assert set(SQLModel.metadata.tables) == set(TABLES)


def test_message_key_is_stable_and_hides_the_id() -> None:
    assert message_key("<a@x>") == message_key("<a@x>") != message_key("<b@x>")
    assert "a@x" not in message_key("<a@x>") and message_key("<a@x>").startswith("sha256:")


def _take(intake: Intake, uid: int, raw: bytes, at: datetime = NOW) -> Any:
    return intake.take_in(BOX, 1, Fetched(uid, raw, len(raw), False), at)


def _request() -> bytes:
    return mail_bytes(sender=f"Alice Requester <{ALICE}>", subject="Erase me ALICE-SUBJ-1",
                      message_id="<alice-1@customer.test>",
                      body="Please delete my personal data. ALICE-BODY-1, call me on 03-5555-0101.")


def _build(tmp_path: Path, db_url: str, smtp_port: int) -> World:
    cfg = write_config(tmp_path, imap_port=10143, smtp_port=smtp_port, db_url=db_url,
                       overrides={"database": {"keep_bodies": True, "retention_days": 365},
                                  "staff": {"digest_recipients": ["dpo@bot.test"]}})
    settings = load_settings(cfg)
    engine = make_engine(db_url)
    mailing = Mailing(settings, Renderer(ROOT / "templates"))
    intake = Intake(mailing, engine, load_rules(ROOT / "config" / "rules.toml"))
    request = _request()
    first = _take(intake, 1, request)
    assert first.action == "new_case" and first.replied
    with Session(engine) as s:
        ack_id = s.exec(select(OutboxRow.message_id)).scalars().first()  # type: ignore[call-overload]
    follow = _take(intake, 2, mail_bytes(sender=ALICE, subject=f"Re: [{first.ref}] ALICE-SUBJ-2",
                                         message_id="<alice-2@customer.test>", body="ALICE-BODY-2 more"))
    assert follow.action == "follow_up"
    _take(intake, 3, mail_bytes(sender=OTHER, subject="Re: MALLORY-SUBJ", message_id="<m-1@other.test>",
                                body="Please delete all data", headers={"In-Reply-To": ack_id}))
    assert _take(intake, 4, request).action == "duplicate"
    ignored = _take(intake, 5, mail_bytes(sender="bounce.person@example.org", subject="Out of office IGN-SUBJ",
                                          message_id="<ooo@example.org>", body="I am away.",
                                          headers={"Auto-Submitted": "auto-replied"}))
    assert ignored.action == "ignored"
    assert _take(intake, 6, b"").action == "quarantined"
    with transaction(engine) as s:  # as the intake records a mail it failed on, the error's text quoting it
        s.add(MessageRow(direction="in", message_id="<uid-1-7@quarantine>", recorded_at=NOW, action="quarantined",
                         reason="internal error while taking in: ValueError: quar.person@example.com QUAR-SUBJ",
                         from_addr="quar.person@example.com", subject="QUAR-SUBJ", mailbox_uid=7))
        s.add(LedgerRow(mailbox=BOX, uidvalidity=1, uid=7, outcome="quarantined", processed_at=NOW))
    with transaction(engine) as s:  # a staff correction keeping the inquiry's words (`cases set-kinds`)
        case_id = s.exec(select(CaseRow.id).where(CaseRow.ref == first.ref)).scalar_one()  # type: ignore[call-overload]
        s.add(CorrectionRow(case_id=case_id, at=NOW, actor="staff1", kinds_before="access", kinds_after="deletion",
                            text="please delete my personal data alice-body-1 03-5555-0101"))
    actions.reply(engine, mailing, first.ref, "STAFF-REPLY-TEXT: we called 090-8765-4321", now=NOW, actor="staff1")
    assert queue_digest(engine, Notifier(settings), NOW + timedelta(hours=1), "2026-12-01")
    with Session(engine) as s:
        digests = [bytes(r) for r in s.exec(select(OutboxRow.raw).where(OutboxRow.purpose == "digest")).scalars()]  # type: ignore[call-overload]
    assert digests and any(ALICE.encode() in d or b"alice.req" in d for d in digests)  # the digest lists her
    return World(settings, engine, 7)


def _send_all(world: World, sink: Any) -> None:
    sink.fail_next(1, 550, f"5.1.1 <{ALICE}>: Recipient address rejected", at="rcpt")
    presence = Presence(world.engine)
    try:
        flush(world.engine, Mailer(world.settings.smtp), presence, NOW + timedelta(hours=2))
    finally:
        presence.close()
    with Session(world.engine) as s:
        statuses = list(s.exec(select(OutboxRow.status, OutboxRow.last_error)).all())  # type: ignore[call-overload]
    assert all(st in ("sent", "failed") for st, _ in statuses), statuses
    assert any(ALICE in err for _, err in statuses)  # a refusal that quotes the recipient is kept for staff


def _close_all(world: World) -> None:
    with Session(world.engine) as s:
        refs = list(s.exec(select(CaseRow.ref)).scalars())  # type: ignore[call-overload]
    for ref in refs:
        actions.apply(world.engine, ref, lifecycle.Close(NOW + timedelta(days=1), "phoned her on 090-8765-4321"),
                      now=NOW + timedelta(days=1), policy=world.settings.case_policy, actor="staff1")


def _found_in_tables(engine: Engine) -> dict[str, list[str]]:
    """Every needle found in any column of any row of any table, by table."""
    found: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name in SQLModel.metadata.tables:
            for row in conn.execute(text(f'SELECT * FROM "{name}"')).all():
                blob = " ".join(bytes(v).decode("utf-8", "replace") if isinstance(v, bytes | memoryview) else str(v)
                                for v in row)
                hits = [n for n in NEEDLES if n.lower() in blob.lower()]
                if hits:
                    found.setdefault(name, []).extend(hits)
    return found


@pytest.fixture
def world(tmp_path: Path, db_url: str, smtp_sink: Any) -> Iterator[World]:
    w = _build(tmp_path, db_url, smtp_sink.port)
    _send_all(w, smtp_sink)
    _close_all(w)
    yield w
    w.engine.dispose()


def test_purge_leaves_no_personal_data_in_any_table(world: World) -> None:
    engine = world.engine
    assert set(_found_in_tables(engine)) >= {"cases", "messages", "events", "outbox"}  # the data was there
    dry = purge(engine, now=LATER, retention_days=365, dry_run=True)
    assert dry.refs and dry.caseless >= 3 and _found_in_tables(engine)  # a dry run changes nothing
    report = purge(engine, now=LATER, retention_days=365, dry_run=False)
    assert report.refs == dry.refs and report.caseless == dry.caseless and report.outbox == dry.outbox
    assert _found_in_tables(engine) == {}
    wiped = wipe(engine)
    assert wiped.done, wiped.detail
    if engine.dialect.name == "postgresql":
        assert "does not overwrite" in wiped.detail and "backups" in wiped.detail  # says what VACUUM promises
    with Session(engine) as s:  # what the bot needs to not answer twice, and to count, stays
        assert len(s.exec(select(LedgerRow.uid)).all()) == world.takes  # type: ignore[call-overload]
        assert all(c.kinds for c in s.exec(select(CaseRow)).scalars())  # type: ignore[call-overload]
        ids = list(s.exec(select(MessageRow.message_id)).scalars())  # type: ignore[call-overload]
        assert ids and all(i.startswith("sha256:") for i in ids)
        assert message_key("<alice-1@customer.test>") in ids
        # nothing can read the erased mail back from the mailbox (the console, an evidence pack)
        assert all(u is None for u in s.exec(select(MessageRow.mailbox_uid)).scalars())  # type: ignore[call-overload]
        assert all(r.raw == b"" for r in s.exec(select(OutboxRow)).scalars())  # type: ignore[call-overload]
        assert sum(e.kind == "purged" for e in s.exec(select(EventRow)).scalars()) == len(report.refs)  # type: ignore[call-overload]
    again = purge(engine, now=LATER, retention_days=365, dry_run=False)
    assert not again.changed  # nothing left to erase
    # the same mail coming again (a UIDVALIDITY change, a re-delivery) is still known by its hashed id
    intake = Intake(Mailing(world.settings, Renderer(ROOT / "templates")), engine,
                    load_rules(ROOT / "config" / "rules.toml"))
    assert _take(intake, 99, _request(), at=LATER).action == "duplicate"


def test_purge_keeps_what_is_not_past_retention(world: World) -> None:
    engine = world.engine
    report = purge(engine, now=NOW + timedelta(days=30), retention_days=365, dry_run=False)
    assert not report.changed
    assert set(_found_in_tables(engine)) >= {"cases", "messages", "events", "outbox"}


def test_no_personal_data_in_the_sqlite_files_after_a_purge(tmp_path: Path, smtp_sink: Any) -> None:
    """Byte search of bot.db, bot.db-wal and bot.db-shm, with a second connection open, as a running bot has."""
    db = tmp_path / "bot.db"
    w = _build(tmp_path, f"sqlite:///{db}", smtp_sink.port)
    _send_all(w, smtp_sink)
    _close_all(w)
    with transaction(w.engine) as s:  # a year of ignored mail: enough pages for the b-trees to split and merge
        s.add_all(MessageRow(direction="in", message_id=f"<ooo-{i}@example.org>", recorded_at=NOW, action="ignored",
                             from_addr=f"bounce.person@example.org.{i}", subject=f"Out of office IGN-SUBJ {i}",
                             reason="auto-replied") for i in range(3000))
    import sqlite3

    old = sqlite3.connect(db, isolation_level=None)  # an earlier release erased without secure_delete, as SQLite's
    try:                                           # default is in many builds: the text stayed in free space
        old.execute("PRAGMA secure_delete=OFF")
        old.execute("UPDATE messages SET subject = '', from_addr = '' WHERE action = 'ignored'")
        old.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        old.close()
    reader = make_engine(f"sqlite:///{db}")  # another process's pool: idle connections, no transaction
    try:
        with reader.connect() as conn:
            assert conn.execute(select(CaseRow.ref)).first() is not None
        before = _found_in_files(db)
        assert before, "the data should be in the files before the purge"
        assert purge(w.engine, now=LATER, retention_days=365, dry_run=False).changed
        wiped = wipe(w.engine)
        assert wiped.done, wiped.detail
        assert _found_in_files(db) == {}
        assert db.with_name("bot.db-wal").exists()  # the WAL is still in use, truncated
    finally:
        reader.dispose()
        w.engine.dispose()


def _found_in_files(db: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        if not path.exists():
            continue
        data = path.read_bytes().lower()
        hits = [n for n in NEEDLES if n.lower().encode() in data]
        if hits:
            found[path.name] = hits
    return found


def test_wipe_waits_for_a_busy_database_and_says_so_when_it_stays_busy(tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "bot.db"
    engine = make_engine(f"sqlite:///{db}")
    writer = sqlite3.connect(db, isolation_level=None)
    waits: list[float] = []
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        busy = wipe(engine, attempts=3, first_wait=0.01, sleep=waits.append)
        assert not busy.done and "could not run" in busy.detail and waits == [0.01, 0.02]
        writer.execute("ROLLBACK")
        assert wipe(engine).done
    finally:
        writer.close()
        engine.dispose()


def test_retention_tables_cover_the_cursor_and_ledger_names() -> None:
    assert retention.TABLES["mailbox_ledger"].startswith("kept")
