"""The case lifecycle as a pure state machine: transition(state, event) -> new state.

awaiting_documents -> in_progress (documents received) -> responded -> closed;
needs_staff is where general questions and unsorted mail wait for staff.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.clock import Calendar, due_at
from bot.core.errors import TransitionError
from bot.core.model import Kind, Status


@dataclass(frozen=True)
class CaseState:
    status: Status
    kinds: tuple[Kind, ...]
    documents_received_at: datetime | None = None
    due_at: datetime | None = None
    responded_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class DocsReceived:
    on: datetime


@dataclass(frozen=True)
class Extend:
    days: int
    reason: str


@dataclass(frozen=True)
class Responded:
    on: datetime


@dataclass(frozen=True)
class Close:
    on: datetime
    reason: str = ""


CaseEvent = DocsReceived | Extend | Responded | Close


def transition(state: CaseState, event: CaseEvent, *, response_days: int, zone: ZoneInfo,
               calendar: Calendar | None = None) -> tuple[CaseState, str]:
    """The state after the event and a line for the case history; TransitionError if not allowed."""
    if state.status is Status.CLOSED:
        raise TransitionError("the case is closed")
    match event:
        case DocsReceived(on=on):
            if state.status not in (Status.AWAITING_DOCUMENTS, Status.NEEDS_STAFF, Status.IN_PROGRESS):
                raise TransitionError(f"documents cannot be recorded on a case that is {state.status.value}")
            if state.documents_received_at is not None:
                raise TransitionError("documents were already recorded as received")
            due = due_at(on, response_days, zone, calendar)
            new = replace(state, status=Status.IN_PROGRESS, documents_received_at=on, due_at=due)
            return new, f"documents received {on.astimezone(zone).date()}; answer due {due.astimezone(zone).date()}"
        case Extend(days=days, reason=reason):
            if days <= 0:
                raise TransitionError("--days must be a positive number")
            if not reason.strip():
                raise TransitionError("an extension needs a reason")
            if state.due_at is None or state.status is Status.RESPONDED:
                raise TransitionError("only a case with a running response clock can be extended")
            new_due = state.due_at + timedelta(days=days)
            return replace(state, due_at=new_due), f"extended by {days} days to {new_due.astimezone(zone).date()}: {reason}"
        case Responded(on=on):
            if state.status not in (Status.IN_PROGRESS, Status.NEEDS_STAFF):
                raise TransitionError(f"a case that is {state.status.value} cannot be marked responded")
            return replace(state, status=Status.RESPONDED, responded_at=on), f"written answer sent {on.astimezone(zone).date()}"
        case Close(on=on, reason=reason):
            return replace(state, status=Status.CLOSED, closed_at=on), "closed" + (f": {reason}" if reason else "")
    raise TransitionError(f"unknown event {event!r}")
