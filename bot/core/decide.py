"""What to do with one received mail: a pure function of what was parsed, sorted and looked up."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.core.model import KIND_ORDER, RIGHTS_KINDS, Classification, InboundEmail, Kind, Status


class Action(str, enum.Enum):
    NEW_CASE = "new_case"
    FOLLOW_UP = "follow_up"  # joins an existing case, no acknowledgement
    IGNORED = "ignored"  # bounce, auto-reply, bulk...: recorded, never answered
    DUPLICATE = "duplicate"  # the same Message-ID was already taken in
    QUARANTINED = "quarantined"  # could not be understood; staff look at it


@dataclass(frozen=True)
class Known:
    """What the store knows that bears on the decision, looked up by the shell beforehand."""

    duplicate: bool = False
    case_ref: str = ""  # the case this mail belongs to, found by [REF] or In-Reply-To/References
    replies_to_sender_24h: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    kinds: tuple[Kind, ...] = ()
    status: Status | None = None
    template: str = ""  # "" means send nothing
    attach_form: bool = False


def decide(mail: InboundEmail, sorted_: Classification, known: Known, *, reply_cap: int) -> Decision:
    if mail.parse_error:
        return Decision(Action.QUARANTINED, mail.parse_error)
    if known.duplicate:
        return Decision(Action.DUPLICATE, f"message id {mail.message_id} already taken in")
    if known.case_ref:
        why = f"joins {known.case_ref}"
        if sorted_.suppress is not None:
            why += f" ({sorted_.suppress.value}: {sorted_.suppress_evidence})"
        return Decision(Action.FOLLOW_UP, why, kinds=sorted_.kinds)
    if sorted_.suppress is not None:
        return Decision(Action.IGNORED, f"{sorted_.suppress.value}: {sorted_.suppress_evidence}")

    kinds = sorted_.kinds or (Kind.GENERAL,)
    status, template = _status_and_template(kinds)
    if known.replies_to_sender_24h >= reply_cap:
        reason = f"reply cap reached ({known.replies_to_sender_24h} automatic replies in 24 h)"
        return Decision(Action.NEW_CASE, reason, kinds=kinds, status=status)
    reason = "sorted by " + ", ".join(sorted_.rules) if sorted_.rules else "no rule matched: handed to staff"
    return Decision(
        Action.NEW_CASE, reason, kinds=kinds, status=status, template=template,
        attach_form=template == "ack_rights",
    )


def _status_and_template(kinds: tuple[Kind, ...]) -> tuple[Status, str]:
    if any(k in RIGHTS_KINDS for k in kinds):
        return Status.AWAITING_DOCUMENTS, "ack_rights"
    if Kind.MARKETING_OPT_OUT in kinds:
        return Status.IN_PROGRESS, "ack_opt_out"
    return Status.NEEDS_STAFF, "ack_general"


def status_for(kinds: tuple[Kind, ...]) -> Status:
    return _status_and_template(kinds)[0]


def ordered_kinds(kinds: set[Kind] | tuple[Kind, ...]) -> tuple[Kind, ...]:
    return tuple(k for k in KIND_ORDER if k in kinds)
