"""One follow-up sweep: read the cases, plan with `due_followups`, record each step with its outbox row.

Each reminder is unique per case, purpose and recipient, and the outbox enforces it, so two
sweeps at once (or a sweep after a restart) can never queue the same reminder twice. Reminders go
only to cases whose acknowledgement was sent (`due_followups`), and count toward the limits on
automatic mail: while one is reached, a reminder waits for a later sweep and staff are told once.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from bot.adapters.store.cases import find_case_by_ref, followup_candidates, save_state, state_of, thread_of
from bot.adapters.store.engine import transaction
from bot.app.mailing import CaseMail, Mailing, limit_period, limits_of, sent_counts
from bot.app.notify import Notifier
from bot.core.decide import limit_reached
from bot.core.followups import Followup, Step, due_followups
from bot.core.lifecycle import Abandoned, transition
from bot.core.model import OPEN_STATUSES, Action, EventKind, Status
from bot.core.trust import recipient_problem

log = logging.getLogger(__name__)


def sweep_once(engine: Engine, mailing: Mailing, notifier: Notifier, now: datetime) -> list[Followup]:
    settings = mailing.settings
    policy = settings.followup_policy
    local_day = now.astimezone(settings.zone).date().isoformat()
    planned = due_followups(followup_candidates(engine, policy, now, local_day), now, policy)
    if not notifier.recipients:  # nobody to warn: staff alerts are not planned at all
        planned = [p for p in planned if p.step not in (Step.WARN, Step.ESCALATE)]
    carried: list[Followup] = []
    for step in planned:
        try:
            with transaction(engine) as session:
                case = find_case_by_ref(session, step.ref)
                if case is None:
                    continue
                status = Status(case.status)
                if step.step in (Step.WARN, Step.ESCALATE):
                    if status not in OPEN_STATUSES:
                        continue
                    notifier.queue_alert(session, case, step.purpose, overdue=step.step is Step.ESCALATE, now=now)
                elif status is not Status.AWAITING_DOCUMENTS:
                    continue  # staff moved it meanwhile
                elif step.step is Step.REMIND:
                    # a reminder is automatic mail: it counts, and waits while a limit is reached
                    limits = limits_of(settings)
                    limit = limit_reached(sent_counts(session, case.requester, now, limits), limits)
                    if limit:
                        notifier.queue_limit_notice(session, limit, limit_period(limit, now), case.ref, now)
                        log.info("follow-up ref=%s step=%s waits: %s reached", step.ref, step.purpose, limit)
                        continue
                    if recipient_problem(case.requester, settings.own_addresses,
                                         lenient_domains=mailing.lenient_domains):
                        log.info("follow-up ref=%s step=%s: the recipient fails the outbox's check", step.ref,
                                 step.purpose)
                        continue  # the acknowledgement went there, so rare; nothing is sent, nothing repeated
                    thread = thread_of(session, case)
                    mailing.queue(session, case, CaseMail(
                        template="reminder_documents", purpose=step.purpose, action=Action.REMINDER,
                        event=EventKind.REMINDER_QUEUED, in_reply_to=thread[0] if thread else "",
                        references=tuple(thread[:10]), attach_form=True, auto_submitted="auto-generated",
                        automatic=True, inquiry_subject=case.subject), now)
                else:
                    new, notes = transition(state_of(case), Abandoned(now), settings.case_policy)
                    save_state(session, case, new, notes, now)
            carried.append(step)
            log.info("follow-up ref=%s step=%s", step.ref, step.purpose)
        except IntegrityError:
            log.info("follow-up ref=%s step=%s already recorded by another sweep", step.ref, step.purpose)
    return carried
