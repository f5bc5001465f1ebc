"""Which follow-ups are due, as a pure function of the cases and the time.

The database is the source of truth: a follow-up that was already recorded (its purpose is in
`CaseView.done`) is never planned again, so restarts and missed hours send each one once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.model import OPEN_STATUSES, Status

DUE_SOON = timedelta(days=3)  # staff are warned, and the digest lists a case, this long before it is due


class Step(enum.StrEnum):
    REMIND = "remind"  # customer reminder: documents not yet received
    ABANDON = "abandon"  # close the case as abandoned
    WARN = "warn"  # tell staff: the written answer is due within a few days
    ESCALATE = "escalate"  # tell staff: overdue (at most once a local day)


@dataclass(frozen=True)
class FollowupPolicy:
    reminder_days: tuple[int, ...] = (14, 28)
    abandon_days: int = 60
    warn_before: timedelta = DUE_SOON


@dataclass(frozen=True)
class CaseView:
    ref: str
    status: Status
    form_sent_at: datetime  # when the acknowledgement with the form was recorded
    done: frozenset[str]  # purposes of follow-ups already recorded for this case
    due_at: datetime | None = None
    local_day: str = ""  # today's date in the configured zone, for once-a-day escalations
    acknowledged: bool = False  # the acknowledgement was sent: only then may reminders follow it


@dataclass(frozen=True)
class Followup:
    ref: str
    step: Step
    purpose: str  # unique per case, e.g. "reminder14"; also part of the Message-ID


def due_followups(cases: Iterable[CaseView], now: datetime, policy: FollowupPolicy) -> list[Followup]:
    due: list[Followup] = []
    for case in cases:
        due.extend(_staff_alerts(case, now, policy))
        if case.status is not Status.AWAITING_DOCUMENTS:
            continue
        waited = now - case.form_sent_at
        if waited >= timedelta(days=policy.abandon_days):
            if "abandon" not in case.done:
                due.append(Followup(case.ref, Step.ABANDON, "abandon"))
            continue
        # Only the latest reminder that has come due, so a bot that was down for weeks sends one, not several.
        reached = [d for d in policy.reminder_days if waited >= timedelta(days=d)]
        if reached and case.acknowledged:  # never a reminder to someone who was not acknowledged
            purpose = f"reminder{max(reached)}"
            if purpose not in case.done:
                due.append(Followup(case.ref, Step.REMIND, purpose))
    return due


def _staff_alerts(case: CaseView, now: datetime, policy: FollowupPolicy) -> list[Followup]:
    if case.due_at is None or case.status not in OPEN_STATUSES:
        return []
    if now > case.due_at:
        purpose = f"escalate-{case.local_day}"
        return [] if purpose in case.done else [Followup(case.ref, Step.ESCALATE, purpose)]
    if case.due_at - now <= policy.warn_before and "warn-due" not in case.done:
        return [Followup(case.ref, Step.WARN, "warn-due")]
    return []
