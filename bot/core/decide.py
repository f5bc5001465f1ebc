"""What to do with one received mail: a pure function of what was parsed, sorted and looked up."""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.lifecycle import status_for
from bot.core.model import Action, Classification, Flag, InboundEmail, Kind, Status
from bot.core.trust import normalise_address

__all__ = ["Action", "Decision", "Known", "Limits", "Sent", "decide", "from_requester", "limit_reached",
           "template_for"]


@dataclass(frozen=True)
class Limits:
    """The limits on automatic mail (SPEC section 9), by their settings' names."""

    per_sender_per_day: int = 3  # policy.max_auto_replies_per_sender_per_day
    per_domain_per_hour: int = 20  # policy.max_auto_replies_per_domain_per_hour
    per_hour: int = 100  # policy.max_auto_replies_per_hour


@dataclass(frozen=True)
class Sent:
    """Automatic mail already queued, counted on normalised addresses."""

    to_sender_24h: int = 0
    to_domain_1h: int = 0
    all_1h: int = 0


def limit_reached(sent: Sent, limits: Limits) -> str:
    """The setting whose limit one more automatic mail would pass, "" when none."""
    if sent.to_sender_24h >= limits.per_sender_per_day:
        return "policy.max_auto_replies_per_sender_per_day"
    if sent.to_domain_1h >= limits.per_domain_per_hour:
        return "policy.max_auto_replies_per_domain_per_hour"
    if sent.all_1h >= limits.per_hour:
        return "policy.max_auto_replies_per_hour"
    return ""


def from_requester(mail: InboundEmail, sorted_: Classification, requester: str) -> bool:
    """Whether the mail comes from the case's requester (normalised addresses)."""
    who = normalise_address(requester)
    return bool(who) and who in {normalise_address(mail.from_addr), normalise_address(sorted_.recipient)}


@dataclass(frozen=True)
class Known:
    """What the store knows that bears on the decision, looked up by the shell beforehand."""

    duplicate: bool = False
    case_ref: str = ""  # the case this mail belongs to, found by [REF] or In-Reply-To/References
    case_requester: str = ""  # that case's requester
    replies_to_sender_24h: int = 0
    replies_to_domain_1h: int = 0
    replies_1h: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str
    kinds: tuple[Kind, ...] = ()
    status: Status | None = None
    template: str = ""  # "" means send nothing
    attach_form: bool = False
    from_requester: bool = True  # a follow-up: whether it came from the case's requester
    flags: tuple[Flag, ...] = ()  # warnings for staff on the new case
    for_staff: bool = False  # the new case waits for staff (no automatic mail may go out)
    limit: str = ""  # the setting of the limit that held the acknowledgement back


def template_for(status: Status) -> str:
    """The acknowledgement a new case in this status gets."""
    return {Status.AWAITING_DOCUMENTS: "ack_rights", Status.IN_PROGRESS: "ack_opt_out"}.get(status, "ack_general")


def decide(mail: InboundEmail, sorted_: Classification, known: Known, *, reply_cap: int,
           limits: Limits | None = None) -> Decision:
    """`limits` (when given) replaces `reply_cap` with all three limits."""
    limits = limits or Limits(per_sender_per_day=reply_cap, per_domain_per_hour=1 << 30, per_hour=1 << 30)
    if mail.parse_error:
        return Decision(Action.QUARANTINED, mail.parse_error)
    if sorted_.error:  # fail closed: the mail is kept for staff, nothing is sent
        return Decision(Action.QUARANTINED, sorted_.error)
    if known.duplicate:
        return Decision(Action.DUPLICATE, f"message id {mail.message_id} already taken in")
    flags: list[Flag] = list(sorted_.flags)
    mentions = ""
    if known.case_ref:
        if from_requester(mail, sorted_, known.case_requester):
            why = f"joins {known.case_ref}"
            if sorted_.suppress is not None:
                why += f" ({sorted_.suppress.value}: {sorted_.suppress_evidence})"
            return Decision(Action.FOLLOW_UP, why, kinds=sorted_.kinds, from_requester=True)
        # someone else quoting a reference or answering a case's mail: a case of their own
        flags.append(Flag.MENTIONS_OTHER_CASE)
        mentions = f"mentions {known.case_ref}, from another address: "
    if sorted_.suppress is not None:
        return Decision(Action.IGNORED, f"{mentions}{sorted_.suppress.value}: {sorted_.suppress_evidence}")

    if sorted_.unsure:  # fail safe: a request form only when the sorter is sure; staff sort the rest
        kinds: tuple[Kind, ...] = (Kind.GENERAL,)
        guesses = ", ".join(f"{k.value} {p:.2f}" for k, p in sorted_.scores if k in sorted_.unsure or k in sorted_.kinds)
        unsure_reason = f"sorter unsure ({guesses}): handed to staff"
    else:
        kinds, unsure_reason = sorted_.kinds or (Kind.GENERAL,), ""
    status = status_for(kinds)
    held = _held_back(sorted_, Sent(known.replies_to_sender_24h, known.replies_to_domain_1h, known.replies_1h),
                      limits)
    if held:
        limit = limit_reached(Sent(known.replies_to_sender_24h, known.replies_to_domain_1h, known.replies_1h), limits)
        if limit:
            flags.append(Flag.LIMIT_REACHED)
        return Decision(Action.NEW_CASE, mentions + held, kinds=kinds, status=Status.NEEDS_STAFF,
                        flags=tuple(dict.fromkeys(flags)), for_staff=True, limit=limit)
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
    return Decision(Action.NEW_CASE, mentions + reason, kinds=kinds, status=status, template=template,
                    attach_form=template == "ack_rights", flags=tuple(dict.fromkeys(flags)))


def _held_back(sorted_: Classification, sent: Sent, limits: Limits) -> str:
    """Why no acknowledgement may go out ("" when one may): the sender's domain said the mail is not
    from it, or a limit on automatic mail is reached."""
    if Flag.DMARC_FAIL in sorted_.flags:
        return "dmarc=fail from a trusted server: handed to staff, no automatic mail"
    limit = limit_reached(sent, limits)
    if limit == "policy.max_auto_replies_per_sender_per_day":
        return f"reply cap reached ({sent.to_sender_24h} automatic replies in 24 h, {limit}): handed to staff"
    if limit:
        return f"limit reached ({limit}): handed to staff, no automatic mail"
    return ""
