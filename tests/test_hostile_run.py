"""Issue 10: no mail stops `run` (the long-running process), through a real Dovecot and SMTP sink.

Finding 1: a multipart mail over max_message_bytes with 300 nested "(" in To: ended `run`, and since
its UID never reached the ledger, it ended every restart too. Containment: a mail that fails (here one
the server itself cannot read: Dovecot answers its FETCH with BYE) is counted against its UID, then
quarantined with the reason and put in the ledger; the process stays up and answers the next mail.
The generator of tests/hostile.py is run against `run` too.
"""

from __future__ import annotations

import glob
import os
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.botrun import bot_process, wait_health, wait_until, with_health, write_config
from tests.factories import mail_bytes
from tests.hostile import by_append, giant_parts, hostile_mails

pytestmark = pytest.mark.integration
KB = 1024


def genuine(tag: str) -> bytes:
    return mail_bytes(sender=f"{tag}@example.com", subject=f"Request {tag}", message_id=f"<{tag}@customer.test>",
                      body="Please delete my personal data.")


def replies_to(smtp_sink, tag: str) -> int:
    return sum(str(m.message["In-Reply-To"]) == f"<{tag}@customer.test>" for m in smtp_sink.messages())


def ledger(db: Path) -> dict[int, tuple[str, str, str]]:
    """{uid: (outcome, message_id, reason)} of everything the bot took in."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute("SELECT l.uid, l.outcome, m.message_id, m.reason FROM mailbox_ledger l "
                            "LEFT JOIN messages m ON m.id = l.message_row_id").fetchall()
    return {uid: (outcome, message_id or "", reason or "") for uid, outcome, message_id, reason in rows}


def unreadable_on_the_server(mailbox, marker: bytes) -> Path:
    """Make the Maildir file holding `marker` unreadable to Dovecot: its FETCH then ends the session with
    "BYE FETCH failed: Internal error", every time (a real server-side poison, no mock)."""
    for name in glob.glob(str(mailbox.dir / "mail" / mailbox.user / "Maildir" / "*" / "*")):
        path = Path(name)
        if path.is_file() and marker in path.read_bytes():
            path.chmod(0)
            return path
    raise AssertionError("mail file not found")


def start(cfg: Path, log: Path, port: int) -> subprocess.Popen[str]:
    with log.open("a") as err:  # the child keeps its own copy of the descriptor
        proc = bot_process(cfg, "run", stderr=err)
    wait_health(port, timeout=30)
    return proc


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    return proc.returncode


@pytest.mark.timeout(120)
def test_poison_mail_neither_stops_run_nor_is_fetched_forever(tmp_path: Path, mailbox, smtp_sink) -> None:
    db = tmp_path / "bot.db"
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=f"sqlite:///{db}",
                       overrides={"mailbox": {"max_message_bytes": 256 * KB, "reconnect_max_seconds": 1}})
    port = with_health(cfg)
    log = tmp_path / "bot.log"
    nested_to = dict(giant_parts())["part-3mb-nested-to"]
    unreadable = genuine("unreadable").replace(b"Please delete", b"UNREADABLE-MARK Please delete")
    poison_uid, unreadable_uid = mailbox.append([nested_to, unreadable])
    chmodded = unreadable_on_the_server(mailbox, b"UNREADABLE-MARK")
    try:
        mailbox.append([genuine("first")])
        proc = start(cfg, log, port)
        try:
            wait_until(lambda: replies_to(smtp_sink, "first") == 1 or proc.poll() is not None, 60, "first reply")
            assert proc.poll() is None, log.read_text()[-3000:]
            taken = ledger(db)
            # finding 1's mail: recorded from its own header bytes (a quarantine for an error has a made-up id)
            assert taken[poison_uid][1] == "<part-3mb-nested-to@hostile.test>", taken
            outcome, _mid, reason = taken[unreadable_uid]
            assert outcome == "quarantined" and "failed 3 times" in reason and "hung up" in reason, taken
        finally:
            assert stop(proc) == 0, log.read_text()[-3000:]
        before = log.read_text()
        mailbox.append([genuine("after-restart")])
        proc = start(cfg, log, port)
        try:
            wait_until(lambda: replies_to(smtp_sink, "after-restart") == 1 or proc.poll() is not None, 60,
                       "reply after the restart")
            assert proc.poll() is None, log.read_text()[-3000:]
        finally:
            assert stop(proc) == 0
        again = log.read_text()[len(before):]
        assert "failed (" not in again and "connection trouble" not in again, again[-3000:]  # not fetched again
        assert replies_to(smtp_sink, "first") == 1
    finally:
        for name in glob.glob(str(chmodded.parent.parent / "*" / (chmodded.name.split(":")[0] + "*"))):
            os.chmod(name, 0o600)  # readable again, for the next test's reset


@pytest.mark.timeout(120)
def test_hostile_mail_leaves_run_up_and_the_next_genuine_mail_answered(tmp_path: Path, mailbox, smtp_sink) -> None:
    """Issue 10's Done-when: every mail of tests/hostile.py lands in a mailbox `run` watches (by APPEND,
    or, for NULs and bare CRs, as delivered into the Maildir); then a genuine inquiry. The process is
    still up, every hostile mail is in the ledger (recorded, or quarantined with a reason), and the
    genuine one got its acknowledgement."""
    db = tmp_path / "bot.db"
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=f"sqlite:///{db}",
                       overrides={"mailbox": {"max_message_bytes": 512 * KB,
                                              "reconnect_max_seconds": 1},
                                  # containment, not the limits, is tested here: the storm and the genuine
                                  # mail come from the same few domains (the limits: tests/test_trust.py)
                                  "policy": {"max_auto_replies_per_sender_per_day": 1000,
                                             "max_auto_replies_per_domain_per_hour": 1000,
                                             "max_auto_replies_per_hour": 1000}})
    port = with_health(cfg)
    log = tmp_path / "bot.log"
    mails = list(hostile_mails())
    proc = start(cfg, log, port)
    try:
        mailbox.append([raw for _name, raw in mails if by_append(raw)])
        mailbox.drop_into_maildir([raw for _name, raw in mails if not by_append(raw)])
        mailbox.append([genuine("after-the-storm")])
        wait_until(lambda: replies_to(smtp_sink, "after-the-storm") == 1 or proc.poll() is not None, 90,
                   "the genuine mail's acknowledgement")
        assert proc.poll() is None, log.read_text()[-3000:]
        client = mailbox.client()
        try:
            client.select_folder("INBOX", readonly=True)
            on_server = sorted(client.search(["ALL"]))
        finally:
            client.logout()
        assert len(on_server) == len(mails) + 1
        wait_until(lambda: set(on_server) <= set(ledger(db)), 30, "every mail in the ledger")
        taken = ledger(db)
        for uid in on_server:
            outcome, _mid, reason = taken[uid]
            assert outcome, (uid, taken[uid])
            if outcome == "quarantined":
                assert reason, (uid, taken[uid])
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]


@pytest.mark.timeout(120)
def test_a_pass_that_fails_for_a_reason_not_the_network_backs_off_and_retries(tmp_path: Path, mailbox,
                                                                               smtp_sink) -> None:
    """The watched folder is not there (deleted, or not made yet): SELECT is refused, which is not a
    network error, and `run` ended. Now the pass backs off and retries; once the folder is there, its
    mail is answered."""
    db = tmp_path / "bot.db"
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=f"sqlite:///{db}",
                       overrides={"mailbox": {"folder": "Privacy", "reconnect_max_seconds": 1}})
    port = with_health(cfg)
    log = tmp_path / "bot.log"
    with log.open("w") as err:
        proc = bot_process(cfg, "run", stderr=err)
    try:
        wait_until(lambda: "pass failed" in log.read_text() or proc.poll() is not None, 30, "a failed pass")
        wait_until(lambda: log.read_text().count("pass failed") >= 2 or proc.poll() is not None, 30, "a retry")
        assert proc.poll() is None, log.read_text()[-3000:]
        client = mailbox.client()
        try:
            client.create_folder("Privacy")
        finally:
            client.logout()
        mailbox.append([genuine("once-the-folder-is-there")], folder="Privacy")
        wait_health(port, timeout=30)
        wait_until(lambda: replies_to(smtp_sink, "once-the-folder-is-there") == 1 or proc.poll() is not None, 30,
                   "the reply")
        assert proc.poll() is None, log.read_text()[-3000:]
    finally:
        assert stop(proc) == 0, log.read_text()[-3000:]
