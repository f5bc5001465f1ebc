"""Issue 10, findings 6 and 9: no personal data in the logs, even when the database or SMTP fails; the
SQLite file and its folder are private when the bot makes them.

The log tests run the bot as deployed (`run` and `run --once` as processes against Dovecot, an SMTP
sink and a real database) and assert on the process's whole log output.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.adapters.store.engine import make_engine, transaction, trouble
from bot.adapters.store.tables import OutboxRow
from bot.cli import MaskingFormatter
from tests.botrun import bot, bot_process, wait_for_line, wait_health, with_health, write_config
from tests.factories import mail_bytes

SENDER = "leak.sender@example.com"
SUBJECT = "LEAK-SUBJECT-42"
BODY = "LEAK-BODY-99"


def _leaky_mail(sender: str = SENDER) -> bytes:
    return mail_bytes(sender=f"Leaky Person <{sender}>", subject=f"Delete my data {SUBJECT}",
                      message_id="<leak-1@customer.test>", body=f"Please delete my personal data. {BODY}")


def _refuse_inserts(url: str) -> None:
    """The database starts failing every write of a mail's row (a trigger raising on INSERT into messages)."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if engine.dialect.name == "sqlite":
                conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON messages "
                                  "BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END"))
            else:
                conn.execute(text("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
                                  "RAISE EXCEPTION 'refused by the test trigger'; END $$ LANGUAGE plpgsql"))
                conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON messages FOR EACH ROW "
                                  "EXECUTE FUNCTION refuse()"))
    finally:
        engine.dispose()


@pytest.mark.integration
def test_database_failing_mid_write_logs_no_address_subject_or_body(tmp_path: Path, mailbox: Any, smtp_sink: Any,
                                                                   db_url: str) -> None:
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=db_url,
                       overrides={"database": {"keep_bodies": True},
                                  "mailbox": {"reconnect_max_seconds": 1, "idle_renew_seconds": 10}})
    _refuse_inserts(db_url)
    port = with_health(cfg)
    mailbox.append([_leaky_mail()])
    log = tmp_path / "bot.log"
    with log.open("w") as err:
        proc = bot_process(cfg, "run", stderr=err)
        try:
            wait_health(port, timeout=30)
            assert wait_for_line(log, "connection trouble", 30), log.read_text()[-3000:]
            mark = len(log.read_text())
            assert wait_for_line(log, "connection trouble", 30, after=mark)  # and again, after a reconnect
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=30)
    output = log.read_text()
    assert "refused by the test trigger" in output  # the database's own reason is shown
    for secret in (SENDER, "Leaky Person", SUBJECT, BODY, "leak-1@customer.test"):
        assert secret not in output, (secret, output[-3000:])
    assert "[SQL" not in output and "parameters" not in output


def test_engine_errors_never_carry_sql_parameters(db_url: str) -> None:
    """Neither the error's text (hide_parameters) nor what the bot logs of it (`trouble`: no statement, no
    PostgreSQL DETAIL, which quotes the row: "Key (message_id)=(<leak-id@x>) already exists")."""
    from datetime import UTC, datetime

    engine = make_engine(db_url)
    now = datetime.now(UTC)

    def row() -> OutboxRow:
        return OutboxRow(purpose="ack", message_id="<leak-id@x>", to_addr=SENDER, raw=b"x", next_attempt_at=now,
                         created_at=now)

    with transaction(engine) as s:
        s.add(row())
    with pytest.raises(DBAPIError) as caught, transaction(engine) as s:
        s.add(row())
    engine.dispose()
    assert SENDER not in str(caught.value) and "hidden" in str(caught.value)
    logged = trouble(caught.value)
    assert "leak-id" not in logged and SENDER not in logged and "INSERT" not in logged
    assert "IntegrityError" in logged or "UniqueViolation" in logged


@pytest.mark.parametrize(("message", "shown"), [
    ('duplicate key value violates unique constraint "outbox_message_id_key"',
     'UniqueViolation: duplicate key value violates unique constraint "outbox_message_id_key"'),
    ('invalid input syntax for type integer: "a leak@example.com"', 'UniqueViolation: invalid input syntax for type integer: "…"'),
    ("database is locked\n[SQL: INSERT ...]", "UniqueViolation: database is locked"),
])
def test_trouble_keeps_names_and_drops_values(message: str, shown: str) -> None:
    class UniqueViolation(Exception):
        pass

    assert trouble(UniqueViolation(message)) == shown


def test_smtp_refusal_quoting_the_recipient_is_not_logged(tmp_path: Path, mailbox: Any, smtp_sink: Any) -> None:
    rcpt = "leak.rcpt@example.com"
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port,
                       db_url=f"sqlite:///{tmp_path}/bot.db")
    smtp_sink.fail_next(1, 550, f"5.1.1 <{rcpt}>: Recipient address rejected", at="rcpt")
    mailbox.append([_leaky_mail(rcpt)])
    result = bot(cfg, "run", "--once")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "send failed for good" in result.stderr and "550" in result.stderr, result.stderr[-3000:]
    assert rcpt not in result.stderr + result.stdout and "leak.rcpt" not in result.stderr
    assert SUBJECT not in result.stderr


def test_log_formatter_masks_addresses_even_in_tracebacks() -> None:
    formatter = MaskingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError(f"bad mail from {SENDER}")
    except ValueError:
        import sys

        record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "to %s", ("x.y+z@[10.0.0.1]",), sys.exc_info())
    out = formatter.format(record)
    assert SENDER not in out and "x.y+z" not in out and out.count("<address>") == 2 and "ValueError" in out


# -- finding 9: files ----------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_file_and_folder_made_by_the_bot_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: world-readable unless the bot sees to it
    try:
        folder = tmp_path / "made" / "data"
        engine = make_engine(f"sqlite:///{folder}/bot.db")
        with engine.begin() as conn:  # a write, so the -wal and -shm files exist
            conn.execute(text("INSERT INTO counters (name, value) VALUES ('x', 1)"))
        try:
            assert _mode(folder) == 0o700
            for name in ("bot.db", "bot.db-wal", "bot.db-shm"):
                assert _mode(folder / name) == 0o600, name
        finally:
            engine.dispose()
        admins = tmp_path / "admins"  # a folder the admin made is left as it is; the file is still private
        admins.mkdir(mode=0o755)
        admins.chmod(0o755)
        make_engine(f"sqlite:///{admins}/bot.db").dispose()
        assert _mode(admins) == 0o755 and _mode(admins / "bot.db") == 0o600
    finally:
        os.umask(old)


def test_run_once_makes_a_private_database(tmp_path: Path, mailbox: Any, smtp_sink: Any) -> None:
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port,
                       db_url=f"sqlite:///{tmp_path}/state/bot.db")
    old = os.umask(0o022)  # the child inherits it
    try:
        result = bot(cfg, "run", "--once")
    finally:
        os.umask(old)
    assert result.returncode == 0, result.stderr[-2000:]
    assert _mode(tmp_path / "state") == 0o700 and _mode(tmp_path / "state" / "bot.db") == 0o600
