"""Issue 10, findings 1 and 7, at the IMAP adapter against a real Dovecot: a mail fetched in part is the
sender's bytes joined (never a header parsed and written again), FETCH commands keep to a byte budget,
and the header fetch of a mail fetched in part is capped (and the cut is said in a defect)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.adapters.imap import Fetched, Mailbox
from bot.adapters.store.engine import make_engine
from bot.adapters.store.tables import MessageRow
from bot.app.intake import Intake
from bot.app.mailing import Mailing
from bot.compose.templates import Renderer
from bot.core.model import Action
from bot.core.parse import parse_message
from bot.core.parse.limits import MAX_FETCHED_HEADER
from bot.settings import MailboxSettings, load_rules, load_settings
from tests.botrun import ROOT, write_config
from tests.factories import mail_bytes
from tests.hostile import MB, giant_parts

pytestmark = pytest.mark.integration
KB = 1024


def settings(dovecot, **kw) -> MailboxSettings:
    base = dict(host="127.0.0.1", port=dovecot.port, security="none", username=dovecot.user,
                password=dovecot.password)
    base.update(kw)
    return MailboxSettings(**base)


def fetch_all(dovecot, uids: list[int], **kw) -> tuple[list[Fetched], Mailbox]:
    box = Mailbox(settings(dovecot, **kw))
    box.connect()
    try:
        return list(box.fetch(uids)), box
    finally:
        box.close()


def test_oversized_multipart_with_300_nested_parens_in_to_is_fetched_as_its_own_bytes(mailbox) -> None:
    """Finding 1: the header of a mail fetched in part reached the parser re-serialised by the email
    package, which raised RecursionError on `To: ((((...`. Now the header is the server's bytes."""
    raw = dict(giant_parts())["part-3mb-nested-to"]
    [uid] = mailbox.append([raw])
    [got], _box = fetch_all(mailbox, [uid], max_message_bytes=256 * KB)
    assert isinstance(got, Fetched) and got.truncated
    header = raw.split(b"\r\n\r\n", 1)[0]
    renamed = header.replace(b"\r\nContent-Type:", b"\r\nX-Original-Content-Type:")
    assert got.raw.startswith(renamed + b"\r\nContent-Type: multipart/mixed; boundary=")  # joined, not rewritten
    mail = parse_message(got.raw, size=got.size, truncated=True)
    assert mail.parse_error == "" and mail.message_id == "<part-3mb-nested-to@hostile.test>"
    assert "delete my personal data" in mail.text and len(got.raw) < 64 * KB
    assert not [a for a in mail.attachments if a.size > 64 * KB]  # the 3 MB attachment stayed on the server


def test_whole_mails_are_fetched_within_the_byte_budget(mailbox) -> None:
    """Finding 7: one FETCH took up to fetch_batch mails of up to max_message_bytes each. Six mails of
    about 300 KB with a 700 KB budget: three FETCH commands of two mails; a 900 KB mail alone."""
    raws = [mail_bytes(sender=f"s{i}@example.com", subject=f"s{i}", body="x" * (300 * KB), message_id=f"<b{i}@x>")
            for i in range(6)]
    raws.append(mail_bytes(sender="big@example.com", subject="big", body="y" * (900 * KB), message_id="<big@x>"))
    uids = mailbox.append(raws)
    got, box = fetch_all(mailbox, uids, fetch_batch_bytes=700 * KB, max_message_bytes=2 * MB)
    assert [g.uid for g in got] == uids and all(isinstance(g, Fetched) and not g.truncated for g in got)
    assert box.body_fetches == 4  # 2 + 2 + 2 + the big one alone
    assert box.largest_fetch_bytes == len(raws[-1])  # the big one, alone; no group over the budget


def test_a_megabyte_header_is_fetched_capped_and_the_mail_still_recorded(mailbox, tmp_path: Path) -> None:
    """Finding 7: the header fetch of an oversized mail had no limit. A 1 MB header now comes as
    MAX_FETCHED_HEADER bytes, a defect says it was cut, and the mail is recorded and answered."""
    raw = dict(giant_parts())["part-3mb-header-1mb"]
    [uid] = mailbox.append([raw])
    [got], _box = fetch_all(mailbox, [uid], max_message_bytes=256 * KB)
    assert isinstance(got, Fetched) and got.truncated
    assert MAX_FETCHED_HEADER <= len(got.raw) < MAX_FETCHED_HEADER + 64 * KB
    mail = parse_message(got.raw, size=got.size, truncated=True)
    assert any("header longer than" in d for d in mail.defect_texts)
    assert "delete my personal data" in mail.text.lower()
    url = f"sqlite:///{tmp_path}/bot.db"
    cfg = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=url)
    engine = make_engine(url)
    intake = Intake(Mailing(load_settings(cfg), Renderer(ROOT / "templates")), engine,
                    load_rules(ROOT / "config" / "rules.toml"))
    outcome = intake.take_in("box", 1, got, datetime.now(UTC))
    # From and Message-ID come after the 1 MB and were cut off: no one to answer, but recorded, not quarantined
    assert outcome.action is Action.IGNORED
    with Session(engine) as session:
        [row] = session.exec(select(MessageRow).where(MessageRow.mailbox_uid == uid)).all()
    engine.dispose()
    assert "header longer than" in row.defects and row.size == got.size
