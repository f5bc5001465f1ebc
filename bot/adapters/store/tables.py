"""The tables. Every datetime goes in and comes out aware (UTC); SQLite and PostgreSQL behave alike.

Statuses, kinds and flags are stored as their enum values (kinds and flags comma-joined in
KIND_ORDER); `bot.adapters.store.cases` turns rows into the core's values and back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.adapters.store.types import UTCDateTime
from bot.core.model import Delivery

__all__ = ["AccountRow", "CaseRow", "CorrectionRow", "CounterRow", "CursorRow", "EventRow", "LedgerRow",
           "MessageRow", "OutboxRow", "UTCDateTime"]


def _when(**kw: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kw)


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"
    # the console's queue at 100,000 cases: open cases by due date, waiting ones by age, opt-outs to carry out
    __table_args__ = (Index("ix_cases_status_due_at", "status", "due_at"),
                      Index("ix_cases_status_opened_at", "status", "opened_at"),
                      Index("ix_cases_status_documents", "status", "documents_received_at"),
                      # the digest at 100,000 cases: open cases by kinds read from the index alone, and the
                      # few not acknowledged found without looking at every open case
                      Index("ix_cases_status_kinds", "status", "kinds"),
                      Index("ix_cases_unacknowledged", "acknowledged_at", "status", "opened_at"))
    id: int | None = Field(default=None, primary_key=True)
    ref: str = Field(unique=True, index=True, max_length=40)
    status: str = Field(index=True, max_length=32)
    kinds: str = ""  # comma-separated Kind values in KIND_ORDER
    requester: str = Field(index=True, max_length=320)
    requester_name: str = ""
    language: str = "en"
    subject: str = ""
    flags: str = ""  # comma-separated warnings for staff, e.g. dmarc_fail
    opened_at: datetime = _when(index=True)
    documents_received_at: datetime | None = _when(default=None)
    due_at: datetime | None = _when(default=None, index=True)
    responded_at: datetime | None = _when(default=None, index=True)
    closed_at: datetime | None = _when(default=None, index=True)
    updated_at: datetime = _when()
    identity: str = Field(default="", max_length=16)  # "" | verified | insufficient
    identity_document: str = Field(default="", max_length=80)  # which document proved it
    outcome: str = Field(default="", max_length=16)  # "" | done | partly_done | refused | no_data
    outcome_reason: str = ""  # the reason the customer was given (refused, partly_done)
    outcome_at: datetime | None = _when(default=None)
    # a customer's message joined the case and staff have not acted since (queue, digest)
    customer_waiting_since: datetime | None = _when(default=None, index=True)
    documents_requested_at: datetime | None = _when(default=None)  # asked again for documents (insufficient)
    sender_verified: bool = False  # authenticated by a trusted server: its name and subject may be echoed
    acknowledged_at: datetime | None = _when(default=None)  # when its acknowledgement was sent (250)


class MessageRow(SQLModel, table=True):
    """One mail in or out. Whole bodies are kept only when database.keep_bodies is on."""

    __tablename__ = "messages"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    direction: str = Field(max_length=3)  # "in" | "out"
    message_id: str = Field(index=True, max_length=998)
    in_reply_to: str = ""
    from_addr: str = ""
    to_addr: str = ""
    subject: str = ""
    sent_at: datetime | None = _when(default=None)  # the mail's Date header
    recorded_at: datetime = _when(index=True)
    kinds: str = ""
    language: str = ""
    rules: str = ""
    action: str = ""  # new_case | follow_up | ignored | duplicate | quarantined | reply
    reason: str = ""  # why (suppression evidence, quarantine reason, ...)
    size: int = 0
    attachments: str = ""  # "name (type, bytes)" lines; names and sizes only
    defects: str = ""
    mailbox_uid: int | None = None
    body: str | None = Field(default=None, sa_type=Text)


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    at: datetime = _when()
    actor: str = "bot"
    kind: str = Field(max_length=64)
    detail: str = ""


class CursorRow(SQLModel, table=True):
    """Where the watcher is in one mailbox folder."""

    __tablename__ = "mailbox_cursor"
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(unique=True, max_length=500)
    uidvalidity: int
    last_uid: int = 0
    initial_done: bool = False  # the first-start catch-up (mailbox.first_start) has finished
    updated_at: datetime = _when()


class LedgerRow(SQLModel, table=True):
    """Every UID the bot has taken in, with what it did; written with the case in one transaction."""

    __tablename__ = "mailbox_ledger"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)
    id: int | None = Field(default=None, primary_key=True)
    mailbox: str = Field(max_length=500)
    uidvalidity: int
    uid: int
    message_row_id: int | None = Field(default=None, foreign_key="messages.id")
    outcome: str = ""
    processed_at: datetime = _when()
    flagged: bool = Field(default=False, index=True)  # \Seen (or moved) on the server yet


class OutboxRow(SQLModel, table=True):
    """A message waiting to be sent, written in the same transaction as what caused it."""

    __tablename__ = "outbox"
    # one mail per case, purpose and recipient (Message-IDs are random, so this is what stops a twice-queued
    # reminder); the limits on automatic mail count by normalised recipient and domain
    __table_args__ = (Index("ux_outbox_case_purpose_to", "case_id", "purpose", "to_norm", unique=True),
                      # the limits count automatic mail from these alone (no row read: a backlog stays linear)
                      Index("ix_outbox_to_norm_auto_created", "to_norm", "automatic", "created_at"),
                      Index("ix_outbox_to_domain_auto_created", "to_domain", "automatic", "created_at"),
                      Index("ix_outbox_auto_created", "automatic", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id", index=True)
    purpose: str = Field(max_length=64)  # ack | reminder ... | digest
    message_id: str = Field(unique=True, max_length=998)
    to_addr: str = Field(index=True, max_length=320)
    to_norm: str = Field(default="", max_length=320)  # the recipient case folded, +tag removed
    to_domain: str = Field(default="", max_length=255)  # its domain
    automatic: bool = True  # counts towards the limits on automatic mail
    raw: bytes = Field(sa_type=LargeBinary)
    # pending -> claimed (by a worker) -> committing (final "." about to be written) -> sent;
    # or back to pending (retry), failed (refused for good), uncertain (may have been delivered)
    status: str = Field(default=Delivery.PENDING.value, index=True, max_length=16)
    claimed_by: str = Field(default="", max_length=300)
    attempts: int = 0
    next_attempt_at: datetime = _when(index=True)
    last_error: str = ""
    created_at: datetime = _when(index=True)
    sent_at: datetime | None = _when(default=None)
    template: str = Field(default="", max_length=120)  # name.lang@version of the template it was written from


class CounterRow(SQLModel, table=True):
    __tablename__ = "counters"
    name: str = Field(primary_key=True, max_length=64)
    value: int = 0


class AccountRow(SQLModel, table=True):
    """A staff console account (SPEC section 6). Passwords are stored as Argon2id hashes only."""

    __tablename__ = "accounts"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True, max_length=64)
    role: str = Field(max_length=16)  # viewer | staff | admin
    password_hash: str = Field(max_length=200)
    disabled: bool = False
    failed_logins: int = 0  # since the last successful sign-in
    locked_until: datetime | None = _when(default=None)
    session_epoch: int = 0  # raised by a password change or disabling: older sessions stop working
    created_at: datetime = _when()
    updated_at: datetime = _when()
    last_login_at: datetime | None = _when(default=None)
class CorrectionRow(SQLModel, table=True):
    """Staff set the kinds of a case (`cases set-kinds`): a labelled example for the sorter.

    `text` is the inquiry's own words as the sorter read them (normalised; quoted text, signatures
    and legal notices removed), kept only when database.keep_bodies and sorter.keep_correction_text
    are on; it is personal data and the retention purge erases it with the case."""

    __tablename__ = "sorter_corrections"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    at: datetime = _when(index=True)
    actor: str = ""
    kinds_before: str = ""  # comma-separated Kind values, as the bot sorted the case
    kinds_after: str = ""  # as staff set them
    guesses: str = ""  # the sorter's guesses when it was unsure
    text: str | None = Field(default=None, sa_type=Text)
