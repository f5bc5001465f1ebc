"""Mail to staff (`staff.digest_recipients`): the daily digest, due-date alerts and the notice that a
limit on automatic mail was reached. One mail per recipient, queued through the outbox like every
other mail; a digest or a limit notice has a stable Message-ID (once per day or period), an alert is
once per case and purpose (the outbox's unique case, purpose and recipient)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.adapters.store.cases import add_notes, record_of
from bot.adapters.store.outbox import Queued, enqueue
from bot.adapters.store.tables import CaseRow
from bot.compose.message import make_message_id
from bot.compose.notices import notice_message, staff_templates
from bot.core.digest import Digest
from bot.core.lifecycle import Note
from bot.core.model import EventKind
from bot.core.trust import normalise_address
from bot.settings import Settings


def digest_id(stamp: str, index: int, domain: str) -> str:
    return f"<digest-{stamp}.{index}@{domain}>"


def limit_notice_id(limit: str, period: str, index: int, domain: str) -> str:
    """"policy.max_auto_replies_per_hour", "2026-12-01T01" -> "<limit-max_auto_replies_per_hour-2026-12-01T01.0@x>"."""
    name = limit.rpartition(".")[2]
    return f"<limit-{name}-{period}.{index}@{domain}>"


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sender = settings.sender
        self.templates = staff_templates(settings)

    @property
    def recipients(self) -> list[str]:
        # once each (an address listed twice would break "one mail per case, purpose and recipient")
        unique: dict[str, str] = {}
        for address in self.settings.staff.digest_recipients:
            unique.setdefault(normalise_address(address) or address, address)
        return list(unique.values())

    def _queue(self, session: Session, *, subject: str, text: str, html: str, ids: list[str], purpose: str,
               now: datetime, case_id: int | None = None) -> None:
        for to, message_id in zip(self.recipients, ids, strict=True):
            raw = notice_message(subject, text, html, sender=self.sender, to=to, message_id=message_id, date=now)
            enqueue(session, Queued(purpose=purpose, message_id=message_id, to_addr=to, raw=raw, automatic=False,
                                    case_id=case_id, internal=True), now, from_addr=self.sender.address,
                    own_addresses=self.settings.own_addresses)

    def digest_queued(self, session: Session, stamp: str) -> bool:
        from bot.adapters.store.outbox import queued

        return queued(session, digest_id(stamp, 0, self.sender.domain))

    def queue_digest(self, session: Session, digest: Digest, stamp: str, now: datetime) -> None:
        subject, text, html = self.templates.digest(digest)
        ids = [digest_id(stamp, i, self.sender.domain) for i in range(len(self.recipients))]
        self._queue(session, subject=subject, text=text, html=html, ids=ids, purpose="digest", now=now)

    def queue_alert(self, session: Session, case: CaseRow, purpose: str, *, overdue: bool, now: datetime) -> None:
        """Tell staff that the case's written answer is due soon (or overdue); `purpose` is unique per
        case and alert, so an alert is queued once whoever sweeps."""
        assert case.id is not None
        zone = self.settings.zone
        subject, text = self.templates.alert(record_of(case), overdue=overdue,
                                             zone_day=lambda d: d.astimezone(zone).date().isoformat())
        ids = [make_message_id(self.sender.domain) for _ in self.recipients]
        self._queue(session, subject=subject, text=text, html="", ids=ids, purpose=purpose, now=now, case_id=case.id)
        add_notes(session, case, (Note(EventKind.STAFF_ALERTED, purpose),), now)
        session.flush()

    def queue_limit_notice(self, session: Session, limit: str, period: str, ref: str, now: datetime) -> bool:
        """Tell staff, once per `limit` and `period` (e.g. the day or the hour), that a limit on automatic
        mail held mail back; `ref` is the first case it held. False when staff were told already (or
        there is nobody to tell). Another process telling them at the same moment is not an error."""
        if not self.recipients:
            return False
        domain = self.sender.domain
        ids = [limit_notice_id(limit, period, i, domain) for i in range(len(self.recipients))]
        from bot.adapters.store.outbox import queued

        if queued(session, ids[0]):
            return False
        subject = f"Automatic mail held back: {limit} reached"
        text = (f"The limit {limit} was reached ({period}).\n"
                f"From now until the period ends, new cases are opened for staff without an automatic mail;\n"
                f"the first one is {ref}. This notice is sent once per limit and period.\n")
        try:
            with session.begin_nested():
                self._queue(session, subject=subject, text=text, html="", ids=ids, purpose="limit-notice", now=now)
        except IntegrityError:  # another process told staff just now
            return False
        return True
