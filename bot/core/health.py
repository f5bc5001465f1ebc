"""Whether the running bot is healthy (SPEC section 8, `/healthz`): a pure function of what it saw.

Healthy while the mailbox was reached within the last two renewals (an IDLE renewal, or a poll
when the server lacks IDLE) and the database answers, and no OAuth 2.0 token was refused since
the last good one. A process that does not lead (another one watches the mailbox) only needs the
database. The reasons name no person, address or token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

RENEWALS = 2  # the mailbox may go unreached this many renewals before the bot counts as unhealthy


@dataclass(frozen=True)
class Observed:
    now: datetime
    leading: bool  # this process watches the mailbox
    reached_at: datetime | None  # the last time the mailbox answered; None: not yet
    renew_seconds: float  # the IDLE renewal, or the poll interval without IDLE
    database_ok: bool
    token_error: str = ""  # the provider's error code of the last failed token fetch, "" when fine


@dataclass(frozen=True)
class Health:
    ok: bool
    reasons: tuple[str, ...]
    reached_seconds_ago: float | None


def judge(seen: Observed) -> Health:
    reasons: list[str] = []
    if not seen.database_ok:
        reasons.append("database not answering")
    if seen.token_error:
        reasons.append(f"oauth2 access token refused by the provider: {seen.token_error}")
    ago = None if seen.reached_at is None else max(0.0, (seen.now - seen.reached_at).total_seconds())
    if seen.leading:
        limit = RENEWALS * seen.renew_seconds
        if ago is None:
            reasons.append("mailbox not reached yet")
        elif ago > limit:
            reasons.append(f"mailbox last reached {ago:.0f} s ago (more than {RENEWALS} renewals of "
                           f"{seen.renew_seconds:.0f} s)")
    return Health(not reasons, tuple(reasons), ago)
