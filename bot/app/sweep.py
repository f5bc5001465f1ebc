"""One follow-up sweep: read the cases, plan with `due_followups`, record each step with its outbox row.

Each reminder's Message-ID is unique per case and purpose, and the outbox enforces it, so two
sweeps at once (or a sweep after a restart) can never queue the same reminder twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from jinja2 import TemplateError
from sqlalchemy import Engine, and_, or_
from sqlalchemy import select as columns
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.compose.message import build_reply, make_message_id, serialise
from bot.settings import Settings
from bot.compose.digest import digest_message, staff_environment
from bot.core.errors import TemplateProblem
from bot.core.followups import CaseView, Followup, FollowupPolicy, Step, due_followups
from bot.core.model import Status
from bot.compose.templates import Renderer
from bot.compose.context import case_context
from bot.adapters.store import CaseRow, EventRow, MessageRow, OutboxRow, transaction

log = logging.getLogger(__name__)


def _candidates(engine: Engine, policy: FollowupPolicy, open_statuses: list[str], now: datetime,
                local_day: str) -> list[CaseView]:
    """The open cases that could have a follow-up due: a cheap superset, chosen by indexed columns
    (the rules themselves stay in bot.core.followups). Plain rows, so 100,000 open cases stay cheap."""
    c, o = CaseRow.__table__.c, OutboxRow.__table__.c  # type: ignore[attr-defined]
    first_step = now - timedelta(days=min((*policy.reminder_days, policy.abandon_days)))
    maybe = or_(and_(c.status == Status.AWAITING_DOCUMENTS.value, c.opened_at <= first_step),
                and_(c.status.in_(open_statuses), c.due_at <= now + policy.warn_before))
    with engine.connect() as conn:
        cases = conn.execute(columns(c.id, c.ref, c.status, c.opened_at, c.due_at).where(maybe)).all()
        purposes = conn.execute(columns(o.case_id, o.purpose).where(
            o.case_id.in_(columns(c.id).where(maybe)))).all()
    done: dict[int, set[str]] = {}
    for case_id, purpose in purposes:
        done.setdefault(case_id, set()).add(purpose)
    return [CaseView(r.ref, Status(r.status), r.opened_at, frozenset(done.get(r.id, ())), r.due_at, local_day)
            for r in cases]


def sweep_once(engine: Engine, settings: Settings, renderer: Renderer, now: datetime) -> list[Followup]:
    policy = FollowupPolicy(tuple(settings.policy.reminder_days), settings.policy.abandon_days)
    open_statuses = [Status.AWAITING_DOCUMENTS.value, Status.IN_PROGRESS.value, Status.NEEDS_STAFF.value]
    local_day = now.astimezone(settings.zone).date().isoformat()
    views = _candidates(engine, policy, open_statuses, now, local_day)
    planned = due_followups(views, now, policy)
    if not settings.staff.digest_recipients:  # nobody to warn: staff alerts are not planned at all
        planned = [p for p in planned if p.step not in (Step.WARN, Step.ESCALATE)]
    carried: list[Followup] = []
    for step in planned:
        try:
            with transaction(engine) as session:
                case = session.exec(select(CaseRow).where(CaseRow.ref == step.ref)).one()
                if step.step in (Step.WARN, Step.ESCALATE):
                    if not settings.staff.digest_recipients or case.status not in open_statuses:
                        continue
                    _queue_staff_alert(session, settings, case, step, now)
                elif case.status != Status.AWAITING_DOCUMENTS.value:
                    continue  # staff moved it meanwhile
                elif step.step is Step.REMIND:
                    _queue_reminder(session, settings, renderer, case, step, now)
                else:
                    _abandon(session, case, now)
            carried.append(step)
            log.info("follow-up ref=%s step=%s", step.ref, step.purpose)
        except IntegrityError:
            log.info("follow-up ref=%s step=%s already recorded by another sweep", step.ref, step.purpose)
    return carried


def _queue_reminder(session: Session, settings: Settings, renderer: Renderer, case: CaseRow,
                    step: Followup, now: datetime) -> None:
    assert case.id is not None
    s = settings
    thread = session.exec(select(MessageRow.message_id).where(MessageRow.case_id == case.id)
                          .order_by(col(MessageRow.id))).all()
    domain = s.smtp.from_address.rpartition("@")[2] or "privacy-bot.invalid"
    message_id = make_message_id(case.ref, step.purpose, domain)
    ctx = case_context(s, case, inquiry_subject=case.subject)
    out = build_reply(renderer=renderer, template="reminder_documents", ctx=ctx, message_id=message_id,
                      in_reply_to=thread[0] if thread else "", references=tuple(thread[:10]),
                      attach_form=True, auto_submitted="auto-generated")
    raw = serialise(out, from_address=s.smtp.from_address, from_name=s.smtp.from_name,
                    reply_to=s.smtp.from_address, date=now, japanese_charset=s.smtp.japanese_charset)
    session.add(OutboxRow(case_id=case.id, purpose=step.purpose, message_id=message_id, to_addr=case.requester,
                          automatic=False, raw=raw, next_attempt_at=now, created_at=now))
    session.add(MessageRow(case_id=case.id, direction="out", message_id=message_id,
                           in_reply_to=thread[0] if thread else "", from_addr=s.smtp.from_address,
                           to_addr=case.requester, subject=out.subject[:500], recorded_at=now, sent_at=now,
                           kinds=case.kinds, language=case.language, action="reminder", reason=step.purpose,
                           size=len(raw)))
    session.add(EventRow(case_id=case.id, at=now, kind="reminder_queued", detail=f"{step.purpose} {message_id}"))
    session.flush()  # the unique Message-ID is checked here


def _abandon(session: Session, case: CaseRow, now: datetime) -> None:
    assert case.id is not None
    case.status, case.closed_at, case.updated_at = Status.CLOSED.value, now, now
    session.add(case)
    session.add(EventRow(case_id=case.id, at=now, kind="abandoned",
                         detail="closed: no documents received within the configured period"))


def _queue_staff_alert(session: Session, settings: Settings, case: CaseRow, step: Followup, now: datetime) -> None:
    assert case.id is not None and case.due_at is not None
    zone = settings.zone
    lang = settings.staff.language
    env = staff_environment(Path(settings.paths.templates))
    try:
        text = env.get_template(f"alert.{lang}.txt.j2").render(
            ref=case.ref, kinds=[k for k in case.kinds.split(",") if k], requester=case.requester,
            opened=case.opened_at.astimezone(zone).date().isoformat(),
            due=case.due_at.astimezone(zone).date().isoformat(), overdue=step.step is Step.ESCALATE)
    except TemplateError as exc:
        raise TemplateProblem(f"staff alert template ({lang}): {exc}") from None
    subject, _, body = text.partition("\n")
    body = body.lstrip("\n")
    domain = settings.smtp.from_address.rpartition("@")[2] or "privacy-bot.invalid"
    for i, to in enumerate(settings.staff.digest_recipients):
        mid = make_message_id(case.ref, f"{step.purpose}.{i}", domain)
        raw = digest_message(subject.removeprefix("Subject: ").strip(), body, "", sender=settings.smtp.from_address,
                             sender_name=settings.smtp.from_name, to=to, message_id=mid, date=now)
        session.add(OutboxRow(case_id=case.id, purpose=step.purpose, message_id=mid, to_addr=to, automatic=False,
                              raw=raw, next_attempt_at=now, created_at=now))
    session.add(EventRow(case_id=case.id, at=now, kind="staff_alerted", detail=step.purpose))
    session.flush()
