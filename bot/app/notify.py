"""Mail to staff (`staff.digest_recipients`): the daily digest and due-date alerts. One mail per
recipient, each with a stable Message-ID, queued through the outbox like every other mail."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.adapters.store.cases import add_notes, record_of
from bot.adapters.store.outbox import Queued, enqueue
from bot.adapters.store.tables import CaseRow
from bot.compose.message import make_message_id
from bot.compose.notices import StaffTemplates, notice_message
from bot.compose.templates import template_folders
from bot.core.digest import Digest
from bot.core.lifecycle import Note
from bot.core.model import EventKind
from bot.settings import Settings


def digest_id(stamp: str, index: int, domain: str) -> str:
    return f"<digest-{stamp}.{index}@{domain}>"


class Notifier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sender = settings.sender
        self.templates = StaffTemplates(template_folders(settings.paths.templates), settings.staff.language)

    @property
    def recipients(self) -> list[str]:
        return list(self.settings.staff.digest_recipients)

    def _queue(self, session: Session, *, subject: str, text: str, html: str, ids: list[str], purpose: str,
               now: datetime, case_id: int | None = None) -> None:
        for to, message_id in zip(self.recipients, ids, strict=True):
            raw = notice_message(subject, text, html, sender=self.sender, to=to, message_id=message_id, date=now)
            enqueue(session, Queued(purpose=purpose, message_id=message_id, to_addr=to, raw=raw, automatic=False,
                                    case_id=case_id), now, from_addr=self.sender.address)

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
        ids = [make_message_id(case.ref, f"{purpose}.{i}", self.sender.domain) for i in range(len(self.recipients))]
        self._queue(session, subject=subject, text=text, html="", ids=ids, purpose=purpose, now=now, case_id=case.id)
        add_notes(session, case, (Note(EventKind.STAFF_ALERTED, purpose),), now)
        session.flush()
