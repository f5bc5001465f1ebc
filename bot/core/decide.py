"""What to do with one received mail: a pure function of what was parsed, sorted and looked up."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.lifecycle import status_for
from bot.core.model import Action, Classification, InboundEmail, Kind, Status

__all__ = ["Action", "Decision", "Known", "decide", "template_for"]


@dataclass(frozen=True)
class Known:
    """What the store knows that bears on the decision, looked up by the shell beforehand."""

    duplicate: bool = False
    case_ref: str = ""  # the case this mail belongs to, found by [REF] or In-Reply-To/References
    case_requester: str = ""  # that case's requester
    replies_to_sender_24h: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    kinds: tuple[Kind, ...] = ()
    status: Status | None = None
    template: str = ""  # "" means send nothing
    attach_form: bool = False
    from_requester: bool = True  # a follow-up: whether it came from the case's requester


def template_for(status: Status) -> str:
    """The acknowledgement a new case in this status gets."""
    return {Status.AWAITING_DOCUMENTS: "ack_rights", Status.IN_PROGRESS: "ack_opt_out"}.get(status, "ack_general")


def decide(mail: InboundEmail, sorted_: Classification, known: Known, *, reply_cap: int) -> Decision:
    if mail.parse_error:
        return Decision(Action.QUARANTINED, mail.parse_error)
    if known.duplicate:
        return Decision(Action.DUPLICATE, f"message id {mail.message_id} already taken in")
    if known.case_ref:
        why = f"joins {known.case_ref}"
        if sorted_.suppress is not None:
            why += f" ({sorted_.suppress.value}: {sorted_.suppress_evidence})"
        same = mail.reply_address.lower() == known.case_requester.lower()
        return Decision(Action.FOLLOW_UP, why, kinds=sorted_.kinds, from_requester=same)
    if sorted_.suppress is not None:
        return Decision(Action.IGNORED, f"{sorted_.suppress.value}: {sorted_.suppress_evidence}")

    if sorted_.unsure:  # fail safe: a request form only when the sorter is sure; staff sort the rest
        kinds: tuple[Kind, ...] = (Kind.GENERAL,)
        guesses = ", ".join(f"{k.value} {p:.2f}" for k, p in sorted_.scores if k in sorted_.unsure or k in sorted_.kinds)
        unsure_reason = f"sorter unsure ({guesses}): handed to staff"
    else:
        kinds, unsure_reason = sorted_.kinds or (Kind.GENERAL,), ""
    status = status_for(kinds)
    if known.replies_to_sender_24h >= reply_cap:
        reason = f"reply cap reached ({known.replies_to_sender_24h} automatic replies in 24 h)"
        return Decision(Action.NEW_CASE, reason, kinds=kinds, status=status)
    if unsure_reason:
        reason = unsure_reason
    elif sorted_.scores and sorted_.kinds:
        reason = "sorted by the model (" + ", ".join(f"{k.value} {p:.2f}" for k, p in sorted_.scores if k in sorted_.kinds)
        reason += ")" + (" and rules " + ", ".join(sorted_.rules) if sorted_.rules else "")
    elif sorted_.rules:
        reason = "sorted by " + ", ".join(sorted_.rules)
    else:
        reason = "no rule matched: handed to staff"
    template = template_for(status)
    return Decision(Action.NEW_CASE, reason, kinds=kinds, status=status, template=template,
                    attach_form=template == "ack_rights")
