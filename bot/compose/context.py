"""The data a customer message is rendered with, from the settings and the case."""

from __future__ import annotations

from bot.compose.templates import ReplyContext
from bot.core.model import CaseRecord
from bot.settings import Settings


def case_context(settings: Settings, case: CaseRecord, *, inquiry_subject: str) -> ReplyContext:
    """The data a customer mail is rendered with. The sender's display name and subject are echoed only
    when a trusted server authenticated the sender (SPEC section 9): anyone can write "From: Victim's
    Bank <victim@...>", and the bot must not carry their words to the victim. Otherwise the greeting
    is the neutral one and no subject is quoted."""
    verified = case.sender_verified
    return ReplyContext(
        ref=case.ref,
        kinds=case.kinds,
        language=case.language,
        requester=case.requester,
        requester_name=case.requester_name if verified else "",
        inquiry_subject=inquiry_subject if verified else "",
        opened_at=case.opened_at,
        company_name=settings.policy.company_name,
        office_name=settings.smtp.from_name,
        privacy_address=settings.smtp.from_address,
        postal_address=settings.policy.postal_address,
        response_days=settings.policy.response_days,
        timezone=settings.policy.timezone,
    )
