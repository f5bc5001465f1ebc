"""The case lifecycle as a pure state machine: transition(state, event) -> (new state, notes).

awaiting_documents -> in_progress (documents received) -> responded -> closed; needs_staff is where
general questions and unsorted mail wait for staff; in_progress is also where opt-outs wait.
Every status change, whoever causes it (the intake, the sweep, staff), is decided here; the shell
persists the state and writes the notes to the case history.

A customer's message that joins the case marks it `customer_waiting` until staff act on it in any
way (a reply, any recorded step, or "handled" when nothing needs saying). Documents found
insufficient send the case back to awaiting_documents: the response clock waits for new ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.core.clock import Calendar, due_at
from bot.core.errors import TransitionError
from bot.core.model import (
    OUTCOMES_WITH_REASON,
    RIGHTS_KINDS,
    CaseOutcome,
    EventKind,
    Flag,
    Identity,
    Kind,
    Status,
    kinds_in_order,
)


@dataclass(frozen=True)
class CaseState:
    status: Status
    kinds: tuple[Kind, ...]
    flags: tuple[Flag, ...] = ()
    documents_received_at: datetime | None = None
    due_at: datetime | None = None
    responded_at: datetime | None = None
    closed_at: datetime | None = None
    identity: Identity | None = None
    identity_document: str = ""
    outcome: CaseOutcome | None = None
    outcome_reason: str = ""
    outcome_at: datetime | None = None
    customer_waiting_since: datetime | None = None
    documents_requested_at: datetime | None = None  # the documents were asked for again (found insufficient)


@dataclass(frozen=True)
class CasePolicy:
    """What the response clock needs from the settings."""

    response_days: int = 14
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Tokyo"))
    calendar: Calendar | None = None


@dataclass(frozen=True)
class Note:
    """One line for the case history."""

    kind: EventKind
    detail: str


# -- events ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Opened:
    """The intake opens a case for a new inquiry."""

    kinds: tuple[Kind, ...]
    flags: tuple[Flag, ...] = ()
    detail: str = ""
    guesses: str = ""  # the sorter was unsure: its best guesses ("deletion 0.62, disclosure 0.41")
    for_staff: bool = False  # no automatic mail may go out (a limit, dmarc=fail): staff take it from here


@dataclass(frozen=True)
class CustomerWrote:
    """A mail joined the case (by its reference or a thread header)."""

    message_id: str
    reason: str
    from_requester: bool
    sender: str = ""
    at: datetime | None = None  # when it was taken in: the customer waits for staff from then


@dataclass(frozen=True)
class Abandoned:
    """No documents arrived within the configured period."""

    on: datetime


@dataclass(frozen=True)
class KindsSet:
    """Staff sort a case the bot could not."""

    kinds: tuple[Kind, ...]


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


@dataclass(frozen=True)
class IdentityVerified:
    """Staff checked the documents: the requester is who they say (`document`: which one proved it)."""

    document: str


@dataclass(frozen=True)
class DocumentsInsufficient:
    """The documents do not prove who the requester is: the customer is asked again (by a reply from the
    case) and the response clock waits for new documents; reminders and abandonment count from `on`."""

    reason: str
    on: datetime


@dataclass(frozen=True)
class OutcomeRecorded:
    """What the written answer said, and when."""

    outcome: CaseOutcome
    reason: str
    on: datetime


@dataclass(frozen=True)
class StaffReplied:
    """Staff sent the customer a reply from the case (its line in the history is the queued mail's)."""


@dataclass(frozen=True)
class Handled:
    """Staff read the customer's message; nothing needs saying."""


CaseEvent = (Opened | CustomerWrote | Abandoned | KindsSet | DocsReceived | Extend | Responded | Close
             | IdentityVerified | DocumentsInsufficient | OutcomeRecorded | StaffReplied | Handled)
# Events by which staff act on a case: any of them means the customer is no longer waiting for us.
STAFF_EVENTS = (KindsSet, DocsReceived, Extend, Responded, Close, IdentityVerified, DocumentsInsufficient,
                OutcomeRecorded, StaffReplied, Handled)
MAX_DOCUMENT = 80
MAX_REASON = 1000


def status_for(kinds: tuple[Kind, ...]) -> Status:
    """Where a case with these kinds starts: rights requests wait for documents, opt-outs are carried
    out by staff, anything else waits for staff."""
    if any(k in RIGHTS_KINDS for k in kinds):
        return Status.AWAITING_DOCUMENTS
    if Kind.MARKETING_OPT_OUT in kinds:
        return Status.IN_PROGRESS
    return Status.NEEDS_STAFF


def with_flag(flags: tuple[Flag, ...], flag: Flag) -> tuple[Flag, ...]:
    return flags if flag in flags else (*flags, flag)


def transition(state: CaseState | None, event: CaseEvent, policy: CasePolicy) -> tuple[CaseState, tuple[Note, ...]]:
    """The state after the event and the lines for the case history; TransitionError if not allowed.

    `state` is None only for `Opened`. Any staff event ends `customer_waiting`."""
    new, notes = _transition(state, event, policy)
    if isinstance(event, STAFF_EVENTS) and new.customer_waiting_since is not None:
        new = replace(new, customer_waiting_since=None)
    return new, notes


def _transition(state: CaseState | None, event: CaseEvent, policy: CasePolicy) -> tuple[CaseState, tuple[Note, ...]]:
    zone = policy.zone
    if isinstance(event, Opened):
        if state is not None:
            raise TransitionError("the case is already open")
        kinds = kinds_in_order(event.kinds) or (Kind.GENERAL,)
        status = Status.NEEDS_STAFF if event.for_staff else status_for(kinds)
        opened = CaseState(status=status, kinds=kinds, flags=tuple(dict.fromkeys(event.flags)))
        notes = (Note(EventKind.OPENED, event.detail), *(Note(EventKind.FLAGGED, f.value) for f in opened.flags))
        if event.guesses:
            notes = (*notes, Note(EventKind.SORTER_GUESSES, event.guesses))
        return opened, notes
    if state is None:
        raise TransitionError("no such case")
    if isinstance(event, CustomerWrote):  # recorded on any case, closed ones too
        wrote = Note(EventKind.CUSTOMER_MESSAGE, f"{event.message_id} {event.reason}")
        if event.from_requester:
            waiting = state.customer_waiting_since or event.at
            return replace(state, customer_waiting_since=waiting), (wrote,)
        # anyone can quote a reference: staff must see that this came from someone else
        flagged = Note(EventKind.FLAGGED, f"{Flag.OTHER_SENDER.value}: {event.sender[:320]}")
        return replace(state, flags=with_flag(state.flags, Flag.OTHER_SENDER)), (wrote, flagged)
    if isinstance(event, StaffReplied):  # a customer may write after the case was closed: staff can answer
        return state, ()
    if isinstance(event, Handled):
        if state.customer_waiting_since is None:
            raise TransitionError("no customer message is waiting on this case")
        return state, (Note(EventKind.HANDLED, "the customer's message was read; no reply needed"),)
    if state.status is Status.CLOSED:
        raise TransitionError("the case is closed")
    match event:
        case Abandoned(on=on):
            if state.status is not Status.AWAITING_DOCUMENTS:
                raise TransitionError(f"a case that is {state.status.value} is not waiting for documents")
            new = replace(state, status=Status.CLOSED, closed_at=on)
            return new, (Note(EventKind.ABANDONED, "closed: no documents received within the configured period"),)
        case KindsSet(kinds=kinds):
            if not kinds:
                raise TransitionError("give at least one kind")
            if state.status is not Status.NEEDS_STAFF:
                raise TransitionError(f"only a needs_staff case can be re-sorted; this one is {state.status.value}")
            ordered = kinds_in_order(kinds)
            new = replace(state, kinds=ordered, status=status_for(ordered))
            line = f"kinds set to {','.join(k.value for k in ordered)}; status {new.status.value}"
            return new, (Note(EventKind.KINDS_SET, line),)
        case DocsReceived(on=on):
            if state.status is Status.RESPONDED:
                raise TransitionError(f"documents cannot be recorded on a case that is {state.status.value}")
            if state.documents_received_at is not None:
                raise TransitionError("documents were already recorded as received")
            due = due_at(on, policy.response_days, zone, policy.calendar)
            new = replace(state, status=Status.IN_PROGRESS, documents_received_at=on, due_at=due, identity=None,
                          identity_document="")
            line = f"documents received {on.astimezone(zone).date()}; answer due {due.astimezone(zone).date()}"
            return new, (Note(EventKind.DOCUMENTS_RECEIVED, line),)
        case Extend(days=days, reason=reason):
            if days <= 0:
                raise TransitionError("--days must be a positive number")
            if not reason.strip():
                raise TransitionError("an extension needs a reason")
            if state.due_at is None or state.status is Status.RESPONDED:
                raise TransitionError("only a case with a running response clock can be extended")
            new_due = state.due_at + timedelta(days=days)
            line = f"extended by {days} days to {new_due.astimezone(zone).date()}: {reason}"
            return replace(state, due_at=new_due), (Note(EventKind.EXTENDED, line),)
        case Responded(on=on):
            if state.status not in (Status.IN_PROGRESS, Status.NEEDS_STAFF):
                raise TransitionError(f"a case that is {state.status.value} cannot be marked responded")
            line = f"written answer sent {on.astimezone(zone).date()}"
            return replace(state, status=Status.RESPONDED, responded_at=on), (Note(EventKind.RESPONDED, line),)
        case Close(on=on, reason=reason):
            line = "closed" + (f": {reason}" if reason else "")
            return replace(state, status=Status.CLOSED, closed_at=on), (Note(EventKind.CLOSED, line),)
        case IdentityVerified(document=document):
            document = " ".join(document.split())[:MAX_DOCUMENT]
            if not document:
                raise TransitionError("say which document proved the identity")
            if state.documents_received_at is None or state.status is not Status.IN_PROGRESS:
                raise TransitionError("record the documents as received before checking the identity")
            if state.identity is Identity.VERIFIED:
                raise TransitionError("the identity was already verified")
            new = replace(state, identity=Identity.VERIFIED, identity_document=document)
            return new, (Note(EventKind.IDENTITY_VERIFIED, f"identity verified with: {document}"),)
        case DocumentsInsufficient(reason=reason, on=on):
            reason = reason.strip()[:MAX_REASON]
            if not reason:
                raise TransitionError("say what is missing from the documents")
            if state.documents_received_at is None or state.status is not Status.IN_PROGRESS:
                raise TransitionError("only documents recorded as received can be found insufficient")
            if state.identity is Identity.VERIFIED:
                raise TransitionError("the identity was already verified")
            new = replace(state, status=Status.AWAITING_DOCUMENTS, documents_received_at=None, due_at=None,
                          identity=Identity.INSUFFICIENT, identity_document="", documents_requested_at=on)
            line = (f"documents insufficient: {reason}; the customer was asked again; "
                    "the response clock waits for new documents")
            return new, (Note(EventKind.DOCUMENTS_INSUFFICIENT, line),)
        case OutcomeRecorded(outcome=outcome, reason=reason, on=on):
            reason = reason.strip()[:MAX_REASON]
            if outcome in OUTCOMES_WITH_REASON and not reason:
                raise TransitionError(f"an outcome of {outcome.value} needs the reason the customer was given")
            new = replace(state, outcome=outcome, outcome_reason=reason, outcome_at=on)
            line = f"outcome {outcome.value}" + (f": {reason}" if reason else "")
            return new, (Note(EventKind.OUTCOME_RECORDED, line),)
    raise TransitionError(f"unknown event {event!r}")
