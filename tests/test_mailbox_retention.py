"""Issue 10: the optional mailbox retention (`mailbox.retention_days`, off by default) against Dovecot, and
the daily retention job under `run` (database purge and mailbox retention)."""

from __future__ import annotations

import re
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.mailbox_retention import expire_mail
from bot.settings import load_settings
from tests.botrun import bot_process, wait_for_line, wait_health, wait_until, with_health, write_config
from tests.factories import mail_bytes

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=40)


def _put(mailbox: Any, folder: str, tag: str, when: datetime) -> int:
    """APPEND a mail with the server arrival date `when`; its UID."""
    c = mailbox.client()
    try:
        if not c.folder_exists(folder):
            c.create_folder(folder)
        raw = mail_bytes(sender=f"{tag}@example.com", subject=f"Request {tag}", message_id=f"<{tag}@customer.test>",
                         body="Please delete my personal data.")
        answer = c.append(folder, raw, flags=(b"\\Seen",), msg_time=when)
    finally:
        c.logout()
    found = re.search(rb"APPENDUID \d+ (\d+)", answer)
    assert found is not None, answer
    return int(found.group(1))


def _subjects(mailbox: Any, folder: str) -> set[str]:
    return {m.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0].decode() for m in mailbox.messages(folder).values()}


def _settings(tmp_path: Path, mailbox: Any, **keys: Any) -> Any:
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=1, db_url=f"sqlite:///{tmp_path}/bot.db",
                       overrides={"mailbox": keys})
    return load_settings(cfg).mailbox


def test_off_by_default_nothing_leaves_the_mailbox(tmp_path: Path, mailbox: Any) -> None:
    uid = _put(mailbox, "INBOX", "old", OLD)
    assert expire_mail(_settings(tmp_path, mailbox), NOW, [uid]).moved == 0
    assert _subjects(mailbox, "INBOX") == {"Request old"}


def test_processed_mail_past_retention_is_moved_and_nothing_else(tmp_path: Path, mailbox: Any) -> None:
    old = _put(mailbox, "INBOX", "old", OLD)
    _put(mailbox, "INBOX", "quarantined", OLD)  # old but not among the processed UIDs (left for staff)
    new = _put(mailbox, "INBOX", "new", NOW - timedelta(days=2))
    settings = _settings(tmp_path, mailbox, retention_days=30, retention_folder="Old mail")
    done = expire_mail(settings, NOW, [old, new])
    assert (done.moved, done.deleted) == (1, 0)
    assert _subjects(mailbox, "INBOX") == {"Request quarantined", "Request new"}
    assert _subjects(mailbox, "Old mail") == {"Request old"}


def test_delete_expunges_and_the_processed_folder_counts_as_processed(tmp_path: Path, mailbox: Any) -> None:
    _put(mailbox, "Done", "done-old", OLD)
    _put(mailbox, "Done", "done-new", NOW)
    inbox_old = _put(mailbox, "INBOX", "inbox-old", OLD)
    settings = _settings(tmp_path, mailbox, retention_days=30, retention_action="delete", processed_folder="Done")
    done = expire_mail(settings, NOW, [inbox_old])
    assert (done.moved, done.deleted) == (0, 2)
    assert _subjects(mailbox, "Done") == {"Request done-new"}
    assert _subjects(mailbox, "INBOX") == set() and _subjects(mailbox, "Trash") == set()


def test_a_changed_uidvalidity_leaves_the_folder_alone(tmp_path: Path, mailbox: Any) -> None:
    old = _put(mailbox, "INBOX", "old", OLD)
    settings = _settings(tmp_path, mailbox, retention_days=30)
    assert expire_mail(settings, NOW, [old], uidvalidity=1).moved == 0  # the ledger's UIDs are of another folder
    assert _subjects(mailbox, "INBOX") == {"Request old"}


def test_run_purges_the_database_and_expires_mail_daily(tmp_path: Path, mailbox: Any, smtp_sink: Any) -> None:
    """`run` with both retentions set: at start (and every 24 h) an old closed case is erased, the freed
    space wiped, and old mail in the processed folder moved; the log says so without an address."""
    from bot.adapters.store.engine import make_engine, transaction
    from bot.adapters.store.tables import CaseRow, MessageRow

    db = tmp_path / "bot.db"
    engine = make_engine(f"sqlite:///{db}")
    with transaction(engine) as s:
        case = CaseRow(ref="PRV-2025-00001", status="closed", kinds="deletion", requester="gone.person@example.com",
                       subject="GONE-SUBJECT", opened_at=NOW - timedelta(days=500), updated_at=NOW,
                       closed_at=NOW - timedelta(days=400))
        s.add(case)
        s.flush()
        s.add(MessageRow(case_id=case.id, direction="in", message_id="<gone@x>", from_addr="gone.person@example.com",
                         subject="GONE-SUBJECT", recorded_at=NOW - timedelta(days=500)))
    engine.dispose()
    _put(mailbox, "Done", "done-old", OLD)
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=f"sqlite:///{db}",
                       overrides={"database": {"retention_days": 365},
                                  "mailbox": {"retention_days": 30, "processed_folder": "Done"}})
    port = with_health(cfg)
    log = tmp_path / "bot.log"
    with log.open("w") as err:
        proc = bot_process(cfg, "run", stderr=err)
        try:
            wait_health(port, timeout=30)
            assert wait_for_line(log, "retention: 1 processed mail(s) older than 30 days moved to Archive", 30), \
                log.read_text()[-3000:]
            assert wait_for_line(log, "retention: erased personal data of 1 closed case(s)", 5)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
    output = log.read_text()
    assert "gone.person" not in output and "GONE-SUBJECT" not in output
    assert "VACUUM done" in output
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT requester, subject FROM cases").fetchall() == [("(erased)", "")]
    wait_until(lambda: b"gone.person" not in db.read_bytes(), 5, "the erased address gone from the file")
    assert _subjects(mailbox, "Archive") == {"Request done-old"} and _subjects(mailbox, "Done") == set()
