"""What the staff views read, through SQLAlchemy Core alone: no SQLModel, no ORM tables.

`cases list`, `digest --print` and the follow-up sweep only read rows; importing SQLModel and the ORM
classes would cost them a tenth of a second at every start (issue 14). The tables here name only the
columns these queries use; tests/test_store_reads.py checks each against the ORM table of the same name
(`bot.adapters.store.tables`, the one definition of the schema), so a renamed column fails there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Engine, Integer, String, and_, column, exists, func, or_, table
from sqlalchemy import select as columns

from bot.adapters.store.types import UTCDateTime
from bot.core.digest import CORRECTION_DAYS, DigestFacts
from bot.core.followups import DUE_SOON, CaseView, FollowupPolicy
from bot.core.model import (
    OPEN_STATUSES,
    Action,
    CaseOutcome,
    CaseRecord,
    Delivery,
    Flag,
    Identity,
    Kind,
    QuarantinedMail,
    Status,
)

CASES = table(
    "cases",
    column("id", Integer), column("ref", String), column("status", String), column("kinds", String),
    column("requester", String), column("language", String), column("flags", String),
    column("opened_at", UTCDateTime), column("documents_received_at", UTCDateTime), column("due_at", UTCDateTime),
    column("responded_at", UTCDateTime), column("closed_at", UTCDateTime), column("identity", String),
    column("identity_document", String), column("outcome", String), column("outcome_reason", String),
    column("outcome_at", UTCDateTime), column("customer_waiting_since", UTCDateTime),
    column("documents_requested_at", UTCDateTime), column("sender_verified", Boolean),
    column("acknowledged_at", UTCDateTime),
)
OUTBOX = table("outbox", column("case_id", Integer), column("purpose", String), column("status", String))
MESSAGES = table("messages", column("id", Integer), column("mailbox_uid", Integer), column("recorded_at", UTCDateTime),
                 column("reason", String), column("action", String))
CORRECTIONS = table("sorter_corrections", column("case_id", Integer), column("kinds_before", String),
                    column("kinds_after", String))
LIGHT_TABLES = (CASES, OUTBOX, MESSAGES, CORRECTIONS)

_C = CASES.c
_O = OUTBOX.c
RECORD_COLUMNS = (_C.ref, _C.status, _C.kinds, _C.requester, _C.language, _C.flags, _C.opened_at,
                   _C.documents_received_at, _C.due_at, _C.responded_at, _C.closed_at, _C.identity,
                   _C.identity_document, _C.outcome, _C.outcome_reason, _C.outcome_at, _C.customer_waiting_since)
FINISHED = (Status.CLOSED.value, Status.RESPONDED.value)


# -- text columns <-> values -----------------------------------------------------------------------

def kinds_text(kinds: Iterable[Kind]) -> str:
    return ",".join(k.value for k in kinds)


def parse_kinds(text: str) -> tuple[Kind, ...]:
    return tuple(Kind(k) for k in text.split(",") if k)


def flags_text(flags: Iterable[Flag]) -> str:
    return ",".join(f.value for f in flags)


def parse_flags(text: str) -> tuple[Flag, ...]:
    return tuple(Flag(f) for f in text.split(",") if f)


def record_of(row: Any) -> CaseRecord:
    """A CaseRow, or a plain row with its columns, as the core's value."""
    return CaseRecord(
        ref=row.ref, status=Status(row.status), kinds=parse_kinds(row.kinds), requester=row.requester,
        language=row.language, flags=parse_flags(row.flags), opened_at=row.opened_at,
        documents_received_at=row.documents_received_at, due_at=row.due_at, responded_at=row.responded_at,
        closed_at=row.closed_at, requester_name=getattr(row, "requester_name", ""),
        subject=getattr(row, "subject", ""), identity=Identity(row.identity) if row.identity else None,
        identity_document=row.identity_document, outcome=CaseOutcome(row.outcome) if row.outcome else None,
        outcome_reason=row.outcome_reason, outcome_at=row.outcome_at, customer_waiting_since=row.customer_waiting_since,
        sender_verified=bool(getattr(row, "sender_verified", False)),
    )


# -- staff views -----------------------------------------------------------------------------------

def list_cases(engine: Engine, *, status: str | None = None, kind: str | None = None,
               overdue_at: datetime | None = None, newest: int | None = None) -> tuple[list[CaseRecord], int]:
    """Cases in reference order and how many match; `newest` keeps only the last ones."""
    where = []
    if status:
        where.append(_C.status == status)
    if kind:
        where.append(_C.kinds.contains(kind))
    if overdue_at is not None:
        where.extend((_C.due_at < overdue_at, _C.responded_at.is_(None), _C.closed_at.is_(None)))
    stmt = columns(*RECORD_COLUMNS).where(*where)
    with engine.connect() as conn:
        if newest is None:
            rows = [record_of(r) for r in conn.execute(stmt.order_by(_C.id)).all()]
            return rows, len(rows)
        rows = [record_of(r) for r in reversed(conn.execute(stmt.order_by(_C.id.desc()).limit(max(0, newest))).all())]
        total = conn.execute(columns(func.count()).select_from(CASES).where(*where)).scalar_one()
        return rows, int(total)


def digest_facts(engine: Engine, *, as_of: datetime, since: datetime, ack_target_hours: int,
                 limit: int) -> DigestFacts:
    """Each digest section as the database sees it: which cases belong there (most urgent first,
    at most `limit`) and how many in all. A few indexed queries, whatever the number of cases."""
    c = _C
    open_ = c.status.in_(sorted(s.value for s in OPEN_STATUSES))  # IN, not NOT IN: the status indexes serve it
    rules: dict[str, tuple[Any, tuple[Any, ...]]] = {
        "overdue": (and_(open_, c.due_at < as_of), (c.due_at, c.id)),
        "unacknowledged": (and_(c.acknowledged_at.is_(None), open_,
                                c.opened_at < as_of - timedelta(hours=ack_target_hours)), (c.id,)),
        "due_soon": (and_(open_, c.due_at >= as_of, c.due_at <= as_of + DUE_SOON), (c.due_at, c.id)),
        "awaiting": (c.status == Status.AWAITING_DOCUMENTS.value, (c.opened_at, c.id)),
        "needs_staff": (c.status == Status.NEEDS_STAFF.value, (c.id,)),
        "waiting": (c.customer_waiting_since.is_not(None), (c.customer_waiting_since, c.id)),
        "new": (and_(c.opened_at >= since, c.opened_at < as_of), (c.id,)),
        "responded": (and_(c.responded_at >= since, c.responded_at < as_of), (c.id,)),
        "closed": (and_(c.closed_at >= since, c.closed_at < as_of), (c.id,)),
    }
    m = MESSAGES.c
    sections: dict[str, tuple[Sequence[CaseRecord], int]] = {}
    with engine.connect() as conn:
        for name, (where, order) in rules.items():
            rows = conn.execute(columns(*RECORD_COLUMNS).where(where).order_by(*order).limit(limit)).all()
            total = len(rows) if len(rows) < limit else conn.execute(
                columns(func.count()).select_from(CASES).where(where)).scalar_one()
            sections[name] = ([record_of(r) for r in rows], int(total))
        by_kinds = {parse_kinds(kinds): n for kinds, n in
                    conn.execute(columns(c.kinds, func.count()).where(open_).group_by(c.kinds)).all()}
        quarantined = [QuarantinedMail(r.mailbox_uid, r.recorded_at, r.reason) for r in conn.execute(
            columns(m.mailbox_uid, m.recorded_at, m.reason).where(
                m.action == Action.QUARANTINED.value, m.recorded_at >= since, m.recorded_at < as_of,
            ).order_by(m.id)).all()]
        corrections = correction_counts(conn, as_of)
    return DigestFacts(sections, quarantined, by_kinds, corrections)


def correction_counts(conn: Any, as_of: datetime) -> tuple[int, int]:
    """(cases whose kinds staff corrected, cases opened) among those opened in the CORRECTION_DAYS before `as_of`."""
    c = _C
    k = CORRECTIONS.c
    recent = and_(c.opened_at >= as_of - timedelta(days=CORRECTION_DAYS), c.opened_at < as_of)
    opened = conn.execute(columns(func.count()).select_from(CASES).where(recent)).scalar_one()
    corrected = conn.execute(columns(func.count()).select_from(CASES).where(
        recent, exists().where(k.case_id == c.id, k.kinds_before != k.kinds_after))).scalar_one()
    return int(corrected), int(opened)


def followup_candidates(engine: Engine, policy: FollowupPolicy, now: datetime, local_day: str) -> list[CaseView]:
    """The open cases that could have a follow-up due: a cheap superset, chosen by indexed columns
    (the rules themselves stay in bot.core.followups)."""
    c = _C
    open_statuses = [s.value for s in OPEN_STATUSES]
    first_step = now - timedelta(days=min((*policy.reminder_days, policy.abandon_days)))
    maybe = or_(and_(c.status == Status.AWAITING_DOCUMENTS.value, c.opened_at <= first_step),
                and_(c.status.in_(open_statuses), c.due_at <= now + policy.warn_before))
    with engine.connect() as conn:
        cases = conn.execute(columns(c.id, c.ref, c.status, c.opened_at, c.due_at, c.documents_requested_at)
                             .where(maybe)).all()
        purposes = conn.execute(columns(_O.case_id, _O.purpose, _O.status).where(
            _O.case_id.in_(columns(c.id).where(maybe)))).all()
    done: dict[int, set[str]] = {}
    acknowledged: set[int] = set()
    for case_id, purpose, delivery in purposes:
        done.setdefault(case_id, set()).add(purpose)
        if purpose == "ack" and delivery == Delivery.SENT.value:
            acknowledged.add(case_id)
    # documents asked for again (found insufficient): reminders and abandonment count from then
    return [CaseView(r.ref, Status(r.status), r.documents_requested_at or r.opened_at, frozenset(done.get(r.id, ())),
                     r.due_at, local_day, acknowledged=r.id in acknowledged) for r in cases]
