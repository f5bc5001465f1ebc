"""Cases as people and scripts see them: JSON objects (SPEC section 4)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.core.model import CaseRecord, EventKind

if TYPE_CHECKING:  # `cases list` needs no ORM classes (a tenth of a second at start)
    from bot.adapters.store.tables import EventRow, MessageRow


def _iso(value: datetime | None, zone: ZoneInfo) -> str | None:
    return value.astimezone(zone).isoformat() if value else None


def case_json(case: CaseRecord, now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "ref": case.ref,
        "status": case.status.value,
        "kinds": [k.value for k in case.kinds],
        "requester": case.requester,
        "language": case.language,
        "opened_at": _iso(case.opened_at, zone),
        "documents_received_at": _iso(case.documents_received_at, zone),
        "due_at": _iso(case.due_at, zone),
        "responded_at": _iso(case.responded_at, zone),
        "closed_at": _iso(case.closed_at, zone),
        "overdue": case.overdue(now),
        "flags": [f.value for f in case.flags],
        "customer_waiting": case.customer_waiting,
        "customer_waiting_since": _iso(case.customer_waiting_since, zone),
        "identity": case.identity.value if case.identity else None,
        "identity_document": case.identity_document or None,
        "outcome": case.outcome.value if case.outcome else None,
        "outcome_reason": case.outcome_reason or None,
        "outcome_at": _iso(case.outcome_at, zone),
    }


def case_detail_json(case: CaseRecord, messages: list[MessageRow], events: list[EventRow],
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
    guesses = [e.detail for e in events if e.kind == EventKind.SORTER_GUESSES.value]
    data["sorter_guesses"] = parse_guesses(guesses[-1]) if guesses else []
    return data


def parse_guesses(detail: str) -> list[dict[str, Any]]:
    """"deletion 0.62, disclosure 0.41" -> [{"kind": "deletion", "confidence": 0.62}, ...]."""
    out: list[dict[str, Any]] = []
    for item in detail.split(","):
        kind, _, value = item.strip().rpartition(" ")
        try:
            out.append({"kind": kind, "confidence": float(value)})
        except ValueError:
            continue
    return out
