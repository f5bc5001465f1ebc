"""The console's pure rules, as tables: identity and outcome events, customer-waiting, the dates staff
give, the sign-in throttle."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import date_problem
from bot.core.errors import TransitionError
from bot.core.lifecycle import (
    CasePolicy,
    CaseState,
    Close,
    CustomerWrote,
    DocsReceived,
    DocumentsInsufficient,
    Extend,
    Handled,
    IdentityVerified,
    OutcomeRecorded,
    StaffReplied,
    transition,
)
from bot.core.model import CaseOutcome, Identity, Kind, Status
from bot.core.signin import LOCK_MINUTES, MAX_FAILURES, Throttle, attempt

TOKYO = ZoneInfo("Asia/Tokyo")
POLICY = CasePolicy(response_days=14, zone=TOKYO)


def state(status: Status, **kw) -> CaseState:
    return CaseState(status=status, kinds=(Kind.DISCLOSURE,), **kw)

AT = datetime(2026, 12, 4, 3, 0, tzinfo=TOKYO)
DOCS = CaseState(status=Status.IN_PROGRESS, kinds=(Kind.DISCLOSURE,), documents_received_at=AT,
                 due_at=datetime(2026, 12, 18, 23, 59, 59, tzinfo=TOKYO))


@pytest.mark.parametrize(("before", "event", "check"), [
    (DOCS, IdentityVerified("Passport"), lambda s: (s.identity, s.identity_document) == (Identity.VERIFIED, "Passport")),
    (DOCS, DocumentsInsufficient("cut off", AT),
     lambda s: (s.status, s.identity, s.documents_received_at, s.due_at, s.documents_requested_at)
     == (Status.AWAITING_DOCUMENTS, Identity.INSUFFICIENT, None, None, AT)),
    (DOCS, OutcomeRecorded(CaseOutcome.REFUSED, "no records", AT),
     lambda s: (s.outcome, s.outcome_reason, s.outcome_at) == (CaseOutcome.REFUSED, "no records", AT)),
    (DOCS, OutcomeRecorded(CaseOutcome.NO_DATA, "", AT), lambda s: s.outcome is CaseOutcome.NO_DATA),
    (replace(DOCS, identity=Identity.INSUFFICIENT, status=Status.AWAITING_DOCUMENTS, documents_received_at=None,
             due_at=None), DocsReceived(AT), lambda s: s.identity is None and s.due_at is not None),
])
def test_identity_and_outcome(before: CaseState, event, check) -> None:
    after, notes = transition(before, event, POLICY)
    assert check(after) and notes


@pytest.mark.parametrize(("before", "event", "words"), [
    (DOCS, IdentityVerified("  "), "which document"),
    (state(Status.AWAITING_DOCUMENTS), IdentityVerified("Passport"), "before checking"),
    (replace(DOCS, identity=Identity.VERIFIED), DocumentsInsufficient("x", AT), "already verified"),
    (DOCS, DocumentsInsufficient(" ", AT), "what is missing"),
    (DOCS, OutcomeRecorded(CaseOutcome.REFUSED, " ", AT), "needs the reason"),
    (DOCS, OutcomeRecorded(CaseOutcome.PARTLY_DONE, "", AT), "needs the reason"),
    (state(Status.CLOSED), OutcomeRecorded(CaseOutcome.DONE, "", AT), "closed"),
    (DOCS, Handled(), "no customer message"),
])
def test_identity_and_outcome_refusals(before: CaseState, event, words: str) -> None:
    with pytest.raises(TransitionError, match=words):
        transition(before, event, POLICY)


def test_a_customers_answer_waits_until_any_staff_event() -> None:
    wrote = CustomerWrote("<a@x>", "reference in subject", True, "ruth@example.com", at=AT)
    waiting, _ = transition(DOCS, wrote, POLICY)
    assert waiting.customer_waiting_since == AT
    later, _ = transition(waiting, replace(wrote, at=AT + timedelta(hours=1)), POLICY)
    assert later.customer_waiting_since == AT  # waiting since the first unanswered one
    other, _ = transition(DOCS, replace(wrote, from_requester=False), POLICY)
    assert other.customer_waiting_since is None  # someone else quoting the reference is not the customer
    for event in (StaffReplied(), Handled(), IdentityVerified("Passport"), Extend(3, "busy"),
                  OutcomeRecorded(CaseOutcome.DONE, "", AT), Close(AT)):
        after, _ = transition(waiting, event, POLICY)
        assert after.customer_waiting_since is None, event
    closed = replace(waiting, status=Status.CLOSED)
    assert transition(closed, StaffReplied(), POLICY)[0].customer_waiting_since is None  # a closed case can be answered
    assert transition(closed, Handled(), POLICY)[0].customer_waiting_since is None


NOON = datetime(2026, 12, 10, 12, 0, tzinfo=TOKYO)


@pytest.mark.parametrize(("on", "allow_future", "words"), [
    (datetime(2026, 12, 10, 23, 0, tzinfo=TOKYO), False, ""),  # later today is today
    (datetime(2026, 12, 11, 0, 30, tzinfo=TOKYO), False, "in the future"),
    (datetime(2026, 12, 11, 0, 30, tzinfo=TOKYO), True, ""),
    (datetime(2026, 12, 1, 0, 0, tzinfo=TOKYO), False, ""),  # the day the case was opened
    (datetime(2026, 11, 30, 23, 0, tzinfo=TOKYO), True, "before the case was opened"),
])
def test_dates_staff_give(on: datetime, allow_future: bool, words: str) -> None:
    problem = date_problem(on, opened_at=datetime(2026, 12, 1, 9, 0, tzinfo=TOKYO), now=NOON, zone=TOKYO,
                           allow_future=allow_future)
    assert (words in problem) if words else problem == ""


def test_sign_in_throttle() -> None:
    t, now = Throttle(), NOON
    for i in range(MAX_FAILURES - 1):
        verdict = attempt(t, password_ok=False, now=now)
        assert not verdict.allowed and verdict.wait is None and verdict.throttle.failures == i + 1
        t = verdict.throttle
    assert attempt(t, password_ok=True, now=now).throttle == Throttle()  # success clears the count
    locked = attempt(t, password_ok=False, now=now)
    assert locked.wait == timedelta(minutes=LOCK_MINUTES) and not locked.allowed
    during = attempt(locked.throttle, password_ok=True, now=now + timedelta(minutes=LOCK_MINUTES - 1))
    assert not during.allowed and during.throttle == locked.throttle  # the right password waits too
    after = attempt(locked.throttle, password_ok=True, now=now + timedelta(minutes=LOCK_MINUTES, seconds=1))
    assert after.allowed and after.throttle == Throttle()
    fresh = attempt(locked.throttle, password_ok=False, now=now + timedelta(minutes=LOCK_MINUTES, seconds=1))
    assert fresh.throttle.failures == 1 and fresh.wait is None  # counting starts again


def test_documents_asked_again_restart_the_abandonment_clock(tmp_path) -> None:
    """Found insufficient on day 50, the case is not abandoned on day 60 but 60 days after the new request."""
    from datetime import UTC

    from sqlmodel import Session, select

    from bot.adapters.store.tables import CaseRow
    from bot.app.mailing import Mailing
    from bot.app.notify import Notifier
    from bot.app.sweep import sweep_once
    from bot.compose.templates import Renderer
    from bot.staff import actions
    from tests.botrun import ROOT
    from tests.console import make_desk

    desk = make_desk(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}")
    t0 = datetime(2026, 10, 1, 1, 0, tzinfo=UTC)
    ref = desk.inquiry(when=t0)
    settings, engine = desk.settings, desk.engine
    mailing = Mailing(settings, Renderer(ROOT / "templates"))
    day50 = t0 + timedelta(days=50)
    actions.documents_received(engine, ref, day50, now=day50, policy=settings.case_policy, actor="alice")
    actions.documents_insufficient(engine, mailing, ref, "Please send a copy of both sides.", now=day50, actor="alice")

    def status_after(days: int) -> str:
        sweep_once(engine, mailing, Notifier(settings), t0 + timedelta(days=days))
        with Session(engine) as s:
            return s.exec(select(CaseRow.status).where(CaseRow.ref == ref)).one()

    assert status_after(61) == "awaiting_documents"
    assert status_after(109) == "awaiting_documents"
    assert status_after(111) == "closed"
    engine.dispose()


def test_every_flag_has_words_in_both_languages() -> None:
    """Staff read a flag in their language, never its code (new flags arrive with every trust rule)."""
    from bot.core.model import Flag
    from bot.web.i18n import EN, JA

    missing = [(lang, f.value) for f in Flag for lang, words in (("ja", JA), ("en", EN)) if f.value not in words]
    assert missing == []


@pytest.mark.parametrize(("inquiry_sent", "on", "refused"), [
    (datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO), datetime(2026, 12, 4, 12, 0, tzinfo=TOKYO), ""),  # the mail waited
    (datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO), datetime(2026, 11, 30, 12, 0, tzinfo=TOKYO), "2026-12-01"),
    (datetime(1970, 1, 1, 0, 0, tzinfo=TOKYO), datetime(2026, 12, 4, 12, 0, tzinfo=TOKYO), "2026-12-08"),  # a wrong clock
    (None, datetime(2026, 12, 4, 12, 0, tzinfo=TOKYO), "2026-12-08"),  # no Date: the case's opening
])
def test_a_staff_date_may_be_before_the_case_opened_but_not_before_the_inquiry(
        db_url: str, inquiry_sent: datetime | None, on: datetime, refused: str) -> None:
    """Mail that waited in the mailbox (the bot stopped, or a backlog) opens its case late; documents posted
    after the customer wrote may have arrived before that. The inquiry's own Date counts, by up to 90 days."""
    from bot.adapters.store.engine import make_engine, transaction
    from bot.adapters.store.tables import CaseRow, MessageRow
    from bot.core.errors import UsageError
    from bot.staff import actions

    opened = datetime(2026, 12, 8, 9, 0, tzinfo=TOKYO)
    engine = make_engine(db_url)
    with transaction(engine) as session:
        case = CaseRow(ref="PRV-2026-00001", status="awaiting_documents", kinds="disclosure", requester="a@example.com",
                       opened_at=opened, updated_at=opened)
        session.add(case)
        session.flush()
        session.add(MessageRow(case_id=case.id, direction="in", message_id="<i@x>", sent_at=inquiry_sent,
                               recorded_at=opened))
    now = datetime(2026, 12, 9, 9, 0, tzinfo=TOKYO)
    try:
        if refused:
            with pytest.raises(UsageError, match=f"is before the case was opened \\({refused}\\)"):
                actions.documents_received(engine, "PRV-2026-00001", on, now=now, policy=POLICY, actor="alice")
        else:
            done, _ = actions.documents_received(engine, "PRV-2026-00001", on, now=now, policy=POLICY, actor="alice")
            assert done.documents_received_at == on
    finally:
        engine.dispose()
