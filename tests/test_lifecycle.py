from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.core.clock import due_at, parse_when
from bot.core.errors import TransitionError
from bot.core.lifecycle import CaseState, Close, DocsReceived, Extend, Responded, transition
from bot.core.model import Kind, Status

TOKYO = ZoneInfo("Asia/Tokyo")


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
    s, line = transition(state(Status.AWAITING_DOCUMENTS), DocsReceived(on), response_days=14, zone=TOKYO)
    assert s.status is Status.IN_PROGRESS and s.due_at == datetime(2026, 12, 18, 23, 59, 59, tzinfo=TOKYO)
    assert "2026-12-18" in line
    s, line = transition(s, Extend(7, "documents illegible"), response_days=14, zone=TOKYO)
    assert s.due_at == datetime(2026, 12, 25, 23, 59, 59, tzinfo=TOKYO) and "illegible" in line
    s, _ = transition(s, Responded(on), response_days=14, zone=TOKYO)
    assert s.status is Status.RESPONDED and s.responded_at == on
    s, _ = transition(s, Close(on, "done"), response_days=14, zone=TOKYO)
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
    ],
)
def test_invalid_transitions_are_clear_errors(start, event, message):
    with pytest.raises(TransitionError, match=message):
        transition(start, event, response_days=14, zone=TOKYO)


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
