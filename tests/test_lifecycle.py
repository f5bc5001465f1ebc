from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import due_at, parse_when
from bot.core.errors import TransitionError
from bot.core.lifecycle import (
    Abandoned,
    CasePolicy,
    CaseState,
    Close,
    CustomerWrote,
    DocsReceived,
    Extend,
    KindsSet,
    Opened,
    Responded,
    transition,
)
from bot.core.model import EventKind, Flag, Kind, Status

TOKYO = ZoneInfo("Asia/Tokyo")
POLICY = CasePolicy(response_days=14, zone=TOKYO)
ON = datetime(2026, 12, 4, 12, 0, tzinfo=TOKYO)


def state(status: Status, **kw) -> CaseState:
    return CaseState(status=status, kinds=(Kind.DISCLOSURE,), **kw)


@pytest.mark.parametrize(
    ("received", "days", "due_local"),
    [
        (datetime(2026, 12, 4, 3, 0, tzinfo=UTC), 14, "2026-12-18T23:59:59+09:00"),
        # 23:30 in Tokyo on 12-04 is still 12-04 locally though 14:30 UTC
        (datetime(2026, 12, 4, 14, 30, tzinfo=UTC), 14, "2026-12-18T23:59:59+09:00"),
        # 00:30 Tokyo on 12-05 is 15:30 UTC on 12-04: counts from the Tokyo date
        (datetime(2026, 12, 4, 15, 30, tzinfo=UTC), 14, "2026-12-19T23:59:59+09:00"),
        (datetime(2026, 12, 25, 12, 0, tzinfo=TOKYO), 14, "2027-01-08T23:59:59+09:00"),
        (datetime(2027, 2, 20, 12, 0, tzinfo=TOKYO), 14, "2027-03-06T23:59:59+09:00"),
    ],
)
def test_due_date_counts_calendar_days_in_the_zone(received, days, due_local):
    assert due_at(received, days, TOKYO).isoformat() == due_local


def test_parse_when_accepts_date_and_datetime():
    assert parse_when("2026-12-04", TOKYO) == datetime(2026, 12, 4, 12, 0, tzinfo=TOKYO)
    assert parse_when("2026-12-04T09:30", TOKYO) == datetime(2026, 12, 4, 9, 30, tzinfo=TOKYO)
    with pytest.raises(ValueError, match="not a date"):
        parse_when("4 Dec", TOKYO)


def test_full_path():
    on = datetime(2026, 12, 4, 12, 0, tzinfo=TOKYO)
    s, notes = transition(state(Status.AWAITING_DOCUMENTS), DocsReceived(on), POLICY)
    assert s.status is Status.IN_PROGRESS and s.due_at == datetime(2026, 12, 18, 23, 59, 59, tzinfo=TOKYO)
    assert notes[0].kind is EventKind.DOCUMENTS_RECEIVED and "2026-12-18" in notes[0].detail
    s, notes = transition(s, Extend(7, "documents illegible"), POLICY)
    assert s.due_at == datetime(2026, 12, 25, 23, 59, 59, tzinfo=TOKYO) and "illegible" in notes[0].detail
    s, _ = transition(s, Responded(on), POLICY)
    assert s.status is Status.RESPONDED and s.responded_at == on
    s, _ = transition(s, Close(on, "done"), POLICY)
    assert s.status is Status.CLOSED


@pytest.mark.parametrize(
    ("start", "event", "message"),
    [
        (state(Status.CLOSED), Close(datetime(2026, 1, 1, tzinfo=TOKYO)), "closed"),
        (state(Status.RESPONDED), DocsReceived(datetime(2026, 1, 1, tzinfo=TOKYO)), "cannot be recorded"),
        (state(Status.AWAITING_DOCUMENTS), Extend(3, "x"), "running response clock"),
        (state(Status.IN_PROGRESS, due_at=datetime(2026, 1, 1, tzinfo=TOKYO)), Extend(0, "x"), "positive"),
        (state(Status.IN_PROGRESS, due_at=datetime(2026, 1, 1, tzinfo=TOKYO)), Extend(3, " "), "reason"),
        (state(Status.AWAITING_DOCUMENTS), Responded(datetime(2026, 1, 1, tzinfo=TOKYO)), "cannot be marked"),
        (state(Status.IN_PROGRESS), Abandoned(ON), "not waiting for documents"),
        (state(Status.AWAITING_DOCUMENTS), KindsSet((Kind.DELETION,)), "only a needs_staff case"),
        (state(Status.NEEDS_STAFF), KindsSet(()), "at least one kind"),
        (state(Status.CLOSED), KindsSet((Kind.DELETION,)), "closed"),
        (state(Status.NEEDS_STAFF), Opened((Kind.GENERAL,)), "already open"),
        (None, DocsReceived(ON), "no such case"),
    ],
)
def test_invalid_transitions_are_clear_errors(start, event, message):
    with pytest.raises(TransitionError, match=message):
        transition(start, event, POLICY)


from bot.core.clock import Calendar  # noqa: E402

BUSINESS = Calendar(TOKYO, business_days=True, closures=("12-29..01-03",))


@pytest.mark.parametrize(
    ("received", "days", "calendar", "due_day"),
    [
        # calendar days ignore weekends and holidays
        (datetime(2026, 12, 25, 12, 0, tzinfo=TOKYO), 14, Calendar(TOKYO), "2027-01-08"),
        # business days: Fri 2026-12-18 + 5 -> skips the weekend -> Fri 12-25
        (datetime(2026, 12, 18, 12, 0, tzinfo=TOKYO), 5, BUSINESS, "2026-12-25"),
        # across the year-end closure (12-29..01-03) and the weekend
        (datetime(2026, 12, 25, 12, 0, tzinfo=TOKYO), 3, BUSINESS, "2027-01-05"),  # Mon 12-28, Mon 01-04, Tue 01-05
        # Japanese public holidays: 2026-11-23 (Labour Thanksgiving, Monday) is skipped
        (datetime(2026, 11, 20, 12, 0, tzinfo=TOKYO), 1, BUSINESS, "2026-11-24"),
        # Golden Week 2027: 04-29 Thu holiday, 05-03..05-05 holidays
        (datetime(2027, 4, 28, 12, 0, tzinfo=TOKYO), 3, BUSINESS, "2027-05-07"),  # Fri 04-30, Thu 05-06, Fri 05-07
        # late at night in Tokyo (still Friday locally, already Friday 14:50 UTC): counts from Friday
        (datetime(2026, 12, 18, 14, 50, tzinfo=UTC), 1, BUSINESS, "2026-12-21"),
        # a closure that does not wrap the year
        (datetime(2026, 8, 12, 12, 0, tzinfo=TOKYO), 1, Calendar(TOKYO, True, ("08-13..08-16",)), "2026-08-17"),
        # leap day in calendar counting
        (datetime(2028, 2, 20, 12, 0, tzinfo=TOKYO), 14, Calendar(TOKYO), "2028-03-05"),
    ],
)
def test_due_date_with_business_days_holidays_and_closures(received, days, calendar, due_day):
    assert due_at(received, days, TOKYO, calendar) == datetime.fromisoformat(f"{due_day}T23:59:59+09:00")


@pytest.mark.parametrize("bad", ["12-29-01-03", "13-01..01-02", "02-30..03-01"])
def test_bad_closure_is_rejected(bad):
    from bot.core.clock import parse_closure

    with pytest.raises(ValueError):
        parse_closure(bad)


@pytest.mark.parametrize(
    ("kinds", "status"),
    [
        ((Kind.DELETION, Kind.MARKETING_OPT_OUT), Status.AWAITING_DOCUMENTS),
        ((Kind.MARKETING_OPT_OUT,), Status.IN_PROGRESS),
        ((Kind.GENERAL,), Status.NEEDS_STAFF),
        ((), Status.NEEDS_STAFF),
    ],
)
def test_opening_a_case_chooses_its_status_from_its_kinds(kinds, status):
    s, notes = transition(None, Opened(kinds, (Flag.DMARC_FAIL,), "why"), POLICY)
    assert s.status is status and s.kinds == (kinds or (Kind.GENERAL,)) and s.flags == (Flag.DMARC_FAIL,)
    assert [(n.kind, n.detail) for n in notes] == [(EventKind.OPENED, "why"), (EventKind.FLAGGED, "dmarc_fail")]


def test_a_customer_mail_from_someone_else_flags_the_case_even_when_closed():
    start = state(Status.CLOSED)
    same, notes = transition(start, CustomerWrote("<m@x>", "joins", True, "a@x"), POLICY)
    assert same == start and [n.kind for n in notes] == [EventKind.CUSTOMER_MESSAGE]
    other, notes = transition(start, CustomerWrote("<m@x>", "joins", False, "b@x"), POLICY)
    assert other.flags == (Flag.OTHER_SENDER,) and other.status is Status.CLOSED
    assert [n.kind for n in notes] == [EventKind.CUSTOMER_MESSAGE, EventKind.FLAGGED] and "b@x" in notes[1].detail
    again, _ = transition(other, CustomerWrote("<n@x>", "joins", False, "b@x"), POLICY)
    assert again.flags == (Flag.OTHER_SENDER,)


def test_abandoning_and_re_sorting():
    closed, notes = transition(state(Status.AWAITING_DOCUMENTS), Abandoned(ON), POLICY)
    assert (closed.status, closed.closed_at, notes[0].kind) == (Status.CLOSED, ON, EventKind.ABANDONED)
    sorted_, notes = transition(state(Status.NEEDS_STAFF), KindsSet((Kind.MARKETING_OPT_OUT, Kind.DELETION)), POLICY)
    assert sorted_.kinds == (Kind.DELETION, Kind.MARKETING_OPT_OUT) and sorted_.status is Status.AWAITING_DOCUMENTS
    assert notes[0].detail == "kinds set to deletion,marketing_opt_out; status awaiting_documents"
