"""Issue 10, SPEC section 9: who gets mail from the bot. The intake and the outbox against a real
database (SQLite and PostgreSQL), fed bytes as IMAP hands them out."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.adapters.imap import Fetched
from bot.adapters.store.engine import make_engine, transaction
from bot.adapters.store.tables import CaseRow, EventRow, MessageRow, OutboxRow
from bot.app.intake import Intake, Outcome
from bot.app.mailing import CaseMail, Mailing
from bot.compose.templates import Renderer
from bot.core.model import Action, EventKind
from bot.core.trust import normalise_address, parse_authentication_results, recipient_problem
from bot.settings import load_rules, load_settings
from tests.botrun import ROOT, write_config
from tests.factories import mail_bytes

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
BOX = "bot@127.0.0.1:10143/INBOX"
ASK = "Please send me a copy of my personal data."
MakeIntake = Callable[..., Intake]


@pytest.fixture
def make_intake(tmp_path: Path, db_url: str) -> Iterator[MakeIntake]:
    engines = []

    def make(**overrides: dict[str, Any]) -> Intake:
        settings = load_settings(write_config(tmp_path, imap_port=10143, smtp_port=10025, db_url=db_url,
                                              overrides=overrides))
        engine = make_engine(db_url)
        engines.append(engine)
        return Intake(Mailing(settings, Renderer(ROOT / "templates")), engine, load_rules(ROOT / "config" / "rules.toml"))

    yield make
    for engine in engines:
        engine.dispose()


def take(intake: Intake, uid: int, raw: bytes, now: datetime = NOW) -> Outcome:
    return intake.take_in(BOX, 1, Fetched(uid, raw, len(raw), False), now)


def rows(intake: Intake, model: Any) -> list[Any]:
    with Session(intake.engine) as s:
        return list(s.exec(select(model)).all())


def text_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return "\n".join(str(p.get_content()) for p in msg.walk() if p.get_content_type() == "text/plain") \
        + "\nSubject: " + str(msg["Subject"])


# -- finding 2: fail closed; every recipient checked right before the outbox ---------------------------

@pytest.mark.parametrize("recipient", ["root@localhost", "postmaster@intranet", "pete@shop.test",
                                       "user@example.invalid", "privacy@bot.test", "PRIVACY+x@Bot.Test",
                                       "bot@127.0.0.1", "a@b@example.com", ""])
def test_every_recipient_is_checked_right_before_the_outbox(make_intake: MakeIntake, recipient: str) -> None:
    intake = make_intake()
    first = take(intake, 1, mail_bytes(sender="ruth@example.com", subject="My data", message_id="<a@x>", body=ASK))
    with transaction(intake.engine) as session:
        case = session.exec(select(CaseRow).where(CaseRow.ref == first.ref)).one()
        case.requester = recipient  # however it got there: an old row, a bug upstream, a staff edit
        session.add(case)
        session.flush()
        queued = intake.mailing.queue(session, case, CaseMail(
            template="staff_reply", purpose="reply.1", action=Action.REPLY, event=EventKind.REPLY_QUEUED,
            in_reply_to="<a@x>", references=("<a@x>",), automatic=False, message="We have your request."), NOW)
    assert queued == ""
    assert [o.purpose for o in rows(intake, OutboxRow)] == ["ack"]  # nothing more was queued
    refused = [e for e in rows(intake, EventRow) if e.kind == "recipient_refused"]
    assert len(refused) == 1 and refused[0].detail.startswith("reply.1: ")
    if recipient:
        assert recipient.lower() not in refused[0].detail.lower()  # why, never the address


def test_hostile_from_and_reply_to_localhost_sends_nothing(make_intake: MakeIntake) -> None:
    """From: with 1,200 nested "(" and Reply-To: root@localhost: recorded, nothing sent."""
    intake = make_intake()
    raw = ("From: " + "(" * 1200 + "x@example.com\r\nReply-To: root@localhost\r\nTo: privacy@bot.test\r\n"
           "Subject: delete\r\nMessage-ID: <nest@x>\r\n\r\nPlease delete my personal data.\r\n").encode()
    outcome = take(intake, 1, raw)
    assert not outcome.replied and outcome.action in ("quarantined", "ignored")
    assert rows(intake, OutboxRow) == [] and len(rows(intake, MessageRow)) == 1


# -- finding 11 and Reply-To: authenticated senders only --------------------------------------------

FORGED = {"Reply-To": "victim@example.org",
          "Authentication-Results": "mx.bot.test; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"}


def test_unauthenticated_sender_is_answered_at_from_with_nothing_echoed(make_intake: MakeIntake) -> None:
    """No trusted server configured: the sender's own Authentication-Results line counts for nothing;
    the answer goes to From, greets neutrally and quotes neither their name nor their subject."""
    intake = make_intake()
    raw = mail_bytes(sender="Cheap Pills Online <ruth@example.com>", subject="Visit pills.example now",
                     message_id="<a@x>", body=ASK, headers=FORGED)
    assert take(intake, 1, raw).replied
    (out,) = rows(intake, OutboxRow)
    assert out.to_addr == "ruth@example.com"
    text = text_of(out.raw)
    assert "Dear Customer" in text and "Cheap Pills" not in text and "pills.example" not in text


def test_authenticated_sender_may_be_answered_at_reply_to_and_greeted(make_intake: MakeIntake) -> None:
    intake = make_intake(mailbox={"trusted_authserv_ids": ["mx.bot.test"]})
    raw = mail_bytes(sender="Ruth Adams <ruth@example.com>", subject="My data request", message_id="<a@x>",
                     body=ASK, headers=FORGED)
    assert take(intake, 1, raw).replied
    (out,) = rows(intake, OutboxRow)
    assert out.to_addr == "victim@example.org"
    text = text_of(out.raw)
    assert "Dear Ruth Adams" in text and "My data request" in text


def test_a_results_header_from_an_untrusted_server_is_ignored(make_intake: MakeIntake) -> None:
    intake = make_intake(mailbox={"trusted_authserv_ids": ["mx.bot.test"]})
    headers = {**FORGED, "Authentication-Results": "mx.evil.test; dkim=pass header.d=example.com; dmarc=pass"}
    raw = mail_bytes(sender="Ruth Adams <ruth@example.com>", subject="My data", message_id="<a@x>", body=ASK,
                     headers=headers)
    take(intake, 1, raw)
    assert [o.to_addr for o in rows(intake, OutboxRow)] == ["ruth@example.com"]
    assert "Dear Customer" in text_of(rows(intake, OutboxRow)[0].raw)


def test_dmarc_fail_from_a_trusted_server_is_a_flagged_case_and_no_mail(make_intake: MakeIntake) -> None:
    intake = make_intake(mailbox={"trusted_authserv_ids": ["mx.bot.test"]})
    raw = mail_bytes(sender="ruth@example.com", subject="My data", message_id="<a@x>", body=ASK,
                     headers={"Authentication-Results": "mx.bot.test; spf=fail; dmarc=fail header.from=example.com"})
    outcome = take(intake, 1, raw)
    assert (outcome.action, outcome.replied) == ("new_case", False)
    (case,) = rows(intake, CaseRow)
    assert case.status == "needs_staff" and "dmarc_fail" in case.flags
    assert rows(intake, OutboxRow) == []


# -- finding 3: limits on normalised addresses, staff told once ------------------------------------

def test_limits_per_normalised_sender_per_domain_and_in_all_and_staff_told_once(make_intake: MakeIntake) -> None:
    intake = make_intake(staff={"digest_recipients": ["dpo@bot.test"]},
                         policy={"max_auto_replies_per_domain_per_hour": 5, "max_auto_replies_per_hour": 8})
    uid = 0

    def send(sender: str, minutes: int) -> Outcome:
        nonlocal uid
        uid += 1
        return take(intake, uid, mail_bytes(sender=sender, subject="My data", message_id=f"<m{uid}@x>", body=ASK),
                    NOW + timedelta(minutes=minutes))

    # +tag and case variants share one allowance: 3 a day
    victim = [send(s, 1) for s in ("victim@example.com", "Victim+a@Example.com", "VICTIM+b@example.COM",
                                   "victim+c@example.com", "victim@EXAMPLE.com")]
    assert [o.replied for o in victim] == [True, True, True, False, False]
    # per sender domain per hour: 5
    domain = [send(f"user{i}@example.net", 2) for i in range(7)]
    assert [o.replied for o in domain] == [True] * 5 + [False] * 2
    # in all per hour: 8 (3 + 5 already)
    assert not send("ken@example.jp", 3).replied
    assert not send("aya@example.org", 4).replied
    assert send("ken@example.jp", 70).replied  # the next hour: the hourly limits have room again

    cases = rows(intake, CaseRow)
    held = [c for c in cases if "limit_reached" in c.flags]
    assert len(cases) == 15 and len(held) == 6 and all(c.status == "needs_staff" for c in held)
    notices = [o for o in rows(intake, OutboxRow) if o.purpose == "limit-notice"]
    subjects = sorted(str(email.message_from_bytes(o.raw, policy=email.policy.default)["Subject"]) for o in notices)
    assert [o.to_addr for o in notices] == ["dpo@bot.test"] * 3  # one per limit and period, not one per mail
    assert sorted(s.rpartition(": ")[2] for s in subjects) == [
        "policy.max_auto_replies_per_domain_per_hour reached", "policy.max_auto_replies_per_hour reached",
        "policy.max_auto_replies_per_sender_per_day reached"]
    assert all(not o.automatic for o in notices)


# -- the pure rules (bot/core/trust.py) ------------------------------------------------------------

@pytest.mark.parametrize(("addr", "normalised"), [
    ("Ruth.Adams+Promo@Example.COM", "ruth.adams@example.com"),
    ("<VICTIM+a+b@example.com.>", "victim@example.com"),
    ("victim@example.com", "victim@example.com"),
    ("+only@example.com", "+only@example.com"),  # nothing before the tag: kept as it is
    ("no-at-sign", ""),
    ("", ""),
])
def test_normalise_address(addr: str, normalised: str) -> None:
    assert normalise_address(addr) == normalised


@pytest.mark.parametrize(("addr", "internal", "refused"), [
    ("ruth@example.com", False, False),
    ("taro..yamada@docomo.ne.jp", False, False),  # an old carrier address, as the sorter accepts it
    ("taro..yamada@example.jp", False, True),
    ("root@localhost", False, True),
    ("admin@intranet", False, True),
    ("dpo@bot.test", False, True),
    ("dpo@bot.test", True, False),  # staff from the settings: a test domain is fine, syntax still checked
    ("not an address", True, True),
    ("privacy+x@bot.test", True, True),  # the bot's own address, whatever the tag
    ("ruth@example.com\r\nBcc: x@y.com", False, True),
])
def test_recipient_problem(addr: str, internal: bool, refused: bool) -> None:
    problem = recipient_problem(addr, {"privacy@bot.test"}, internal=internal,
                                lenient_domains=frozenset({"docomo.ne.jp"}))
    assert bool(problem) is refused, problem
    assert addr.split("\r")[0] not in problem


@pytest.mark.parametrize(("value", "server", "results"), [
    ("mx.example.com; dkim=pass (good) header.d=example.com header.s=s1; spf=none",
     "mx.example.com", [("dkim", "pass", ("header.d", "example.com")), ("spf", "none", None)]),
    ("MX.example.com 1; dmarc=fail (p=reject dis=none) header.from=Example.COM",
     "mx.example.com", [("dmarc", "fail", ("header.from", "example.com"))]),
    ("mx.example.com; none", "mx.example.com", []),
    ("(" * 500 + "mx.example.com; dmarc=pass", "", []),  # nested comments: not a result, never a crash
    ("", "", []),
])
def test_parse_authentication_results(value: str, server: str, results: list[Any]) -> None:
    got_server, got = parse_authentication_results(value)
    assert got_server.startswith(server) and len(got) == len(results)
    for r, (method, result, prop) in zip(got, results, strict=True):
        assert (r.method, r.result) == (method, result) and (prop is None or prop in r.properties)
