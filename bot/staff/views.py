"""Cases as people and scripts see them: JSON objects (SPEC section 4) and readable tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.adapters.store import CaseRow, EventRow, MessageRow


def _iso(value: datetime | None, zone: ZoneInfo) -> str | None:
    return value.astimezone(zone).isoformat() if value else None


class CaseFields(Protocol):
    """What a case listing shows: a CaseRow, or a row of the same columns."""

    ref: str
    status: str
    kinds: str
    requester: str
    language: str
    flags: str
    opened_at: datetime
    documents_received_at: datetime | None
    due_at: datetime | None
    responded_at: datetime | None
    closed_at: datetime | None


def is_overdue(case: CaseFields, now: datetime) -> bool:
    return case.due_at is not None and case.responded_at is None and case.closed_at is None and now > case.due_at


def case_json(case: CaseFields, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "ref": case.ref,
        "status": case.status,
        "kinds": [k for k in case.kinds.split(",") if k],
        "requester": case.requester,
        "language": case.language,
        "opened_at": _iso(case.opened_at, zone),
        "documents_received_at": _iso(case.documents_received_at, zone),
        "due_at": _iso(case.due_at, zone),
        "responded_at": _iso(case.responded_at, zone),
        "closed_at": _iso(case.closed_at, zone),
        "overdue": is_overdue(case, now),
        "flags": [f for f in case.flags.split(",") if f],
    }


def case_detail_json(case: CaseRow, messages: list[MessageRow], events: list[EventRow],
                     now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    data = case_json(case, now, zone)
    data["subject"] = case.subject
    data["messages"] = [
        {
            "direction": m.direction,
            "message_id": m.message_id,
            "in_reply_to": m.in_reply_to or None,
            "from": m.from_addr,
            "to": m.to_addr,
            "subject": m.subject,
            "date": _iso(m.sent_at, zone),
            "recorded_at": _iso(m.recorded_at, zone),
            "kinds": [k for k in m.kinds.split(",") if k],
            "action": m.action,
            "reason": m.reason,
            "attachments": [a for a in m.attachments.split("\n") if a],
        }
        for m in messages
    ]
    data["events"] = [
        {"at": _iso(e.at, zone), "actor": e.actor, "kind": e.kind, "detail": e.detail} for e in events
    ]
    return data
