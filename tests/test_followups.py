from datetime import UTC, datetime, timedelta

import pytest

from bot.core.followups import CaseView, FollowupPolicy, Step, due_followups
from bot.core.model import Status

SENT = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
POLICY = FollowupPolicy()


def view(status: Status = Status.AWAITING_DOCUMENTS, done: tuple[str, ...] = (), acknowledged: bool = True) -> CaseView:
    return CaseView("PRV-2026-00001", status, SENT, frozenset(done), acknowledged=acknowledged)


@pytest.mark.parametrize(
    ("days", "done", "status", "expected"),
    [
        (13.9, (), Status.AWAITING_DOCUMENTS, []),
        (14, (), Status.AWAITING_DOCUMENTS, [(Step.REMIND, "reminder14")]),
        (20, ("reminder14",), Status.AWAITING_DOCUMENTS, []),
        (28, ("reminder14",), Status.AWAITING_DOCUMENTS, [(Step.REMIND, "reminder28")]),
        (30, (), Status.AWAITING_DOCUMENTS, [(Step.REMIND, "reminder28")]),  # down for weeks: one, not two
        (59, ("reminder14", "reminder28"), Status.AWAITING_DOCUMENTS, []),
        (60, ("reminder14", "reminder28"), Status.AWAITING_DOCUMENTS, [(Step.ABANDON, "abandon")]),
        (61, ("abandon",), Status.AWAITING_DOCUMENTS, []),
        (20, (), Status.IN_PROGRESS, []),  # documents arrived: no reminder
        (70, (), Status.NEEDS_STAFF, []),
        (70, (), Status.CLOSED, []),
    ],
)
def test_due_followups(days, done, status, expected) -> None:
    got = due_followups([view(status, done)], SENT + timedelta(days=days), POLICY)
    assert [(f.step, f.purpose) for f in got] == expected


def test_configurable_days() -> None:
    policy = FollowupPolicy(reminder_days=(7,), abandon_days=10)
    assert [f.purpose for f in due_followups([view()], SENT + timedelta(days=7), policy)] == ["reminder7"]
    assert [f.purpose for f in due_followups([view()], SENT + timedelta(days=10), policy)] == ["abandon"]


DUE = datetime(2026, 12, 18, 14, 59, 59, tzinfo=UTC)  # 23:59:59 in Tokyo


@pytest.mark.parametrize(
    ("now", "done", "expected"),
    [
        (DUE - timedelta(days=4), (), []),
        (DUE - timedelta(days=3), (), ["warn-due"]),
        (DUE - timedelta(days=1), ("warn-due",), []),
        (DUE + timedelta(hours=1), ("warn-due",), ["escalate-2026-12-19"]),
        (DUE + timedelta(hours=2), ("warn-due", "escalate-2026-12-19"), []),  # once a day
    ],
)
def test_staff_warnings_and_daily_escalation(now, done, expected) -> None:
    local_day = (now + timedelta(hours=9)).date().isoformat()
    case = CaseView("PRV-2026-00001", Status.IN_PROGRESS, SENT, frozenset(done), due_at=DUE, local_day=local_day)
    assert [f.purpose for f in due_followups([case], now, POLICY)] == expected


def test_no_staff_alerts_once_responded() -> None:
    case = CaseView("PRV-2026-00001", Status.RESPONDED, SENT, frozenset(), due_at=DUE, local_day="2026-12-25")
    assert due_followups([case], DUE + timedelta(days=5), POLICY) == []


@pytest.mark.parametrize(("days", "expected"), [(14, []), (28, []), (60, [(Step.ABANDON, "abandon")])])
def test_no_reminder_to_a_case_whose_acknowledgement_was_not_sent(days, expected) -> None:
    """Issue 10: over a limit (or for a refused recipient) no acknowledgement went out; no reminder follows."""
    got = due_followups([view(acknowledged=False)], SENT + timedelta(days=days), POLICY)
    assert [(f.step, f.purpose) for f in got] == expected
