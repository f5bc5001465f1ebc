"""Frozen values that travel between the layers: parse -> classify -> decide -> store -> send.

Nothing here touches a socket, a file or the database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Kind(enum.StrEnum):
    """What a customer asks for (SPEC section 4)."""

    DISCLOSURE = "disclosure"
    AMENDMENT = "amendment"
    ADDITION = "addition"
    DELETION = "deletion"
    THIRD_PARTY_STOP = "third_party_stop"
    MARKETING_OPT_OUT = "marketing_opt_out"
    GENERAL = "general"


RIGHTS_KINDS: frozenset[Kind] = frozenset(
    {Kind.DISCLOSURE, Kind.AMENDMENT, Kind.ADDITION, Kind.DELETION, Kind.THIRD_PARTY_STOP}
)
# Order used whenever kinds are listed for people or JSON.
KIND_ORDER: tuple[Kind, ...] = tuple(Kind)


class Status(enum.StrEnum):
    AWAITING_DOCUMENTS = "awaiting_documents"
    IN_PROGRESS = "in_progress"
    RESPONDED = "responded"
    CLOSED = "closed"
    NEEDS_STAFF = "needs_staff"


class Suppress(enum.StrEnum):
    """Why a mail must never get an automatic reply."""

    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    BULK = "bulk"
    NO_REPLY_SENDER = "no_reply_sender"
    OWN_ADDRESS = "own_address"
    INVALID_ADDRESS = "invalid_address"


OPEN_STATUSES: frozenset[Status] = frozenset({Status.AWAITING_DOCUMENTS, Status.IN_PROGRESS, Status.NEEDS_STAFF})


class Action(enum.StrEnum):
    """What the bot did with a mail: an inbound mail's outcome, or why an outbound one was written."""

    NEW_CASE = "new_case"
    FOLLOW_UP = "follow_up"  # joins an existing case, no acknowledgement
    IGNORED = "ignored"  # bounce, auto-reply, bulk...: recorded, never answered
    DUPLICATE = "duplicate"  # the same Message-ID was already taken in
    QUARANTINED = "quarantined"  # could not be understood; staff look at it
    REPLY = "reply"  # outbound: an acknowledgement (or a staff reply)
    REMINDER = "reminder"  # outbound: a follow-up to the customer


class Flag(enum.StrEnum):
    """Warnings for staff on a case."""

    DMARC_FAIL = "dmarc_fail"  # the sender's domain says this mail is not from it
    OTHER_SENDER = "other_sender"  # a follow-up came from an address other than the requester's
    CLASSIFIER_ERROR = "classifier_error"  # the sorter failed on this mail
    MENTIONS_OTHER_CASE = "mentions_other_case"  # quoted another case's reference or answered its mail
    LIMIT_REACHED = "limit_reached"  # a limit on automatic mail held the acknowledgement back
    RECIPIENT_REFUSED = "recipient_refused"  # the reply address failed the outbox's check


class EventKind(enum.StrEnum):
    """The lines of a case history."""

    OPENED = "opened"
    FLAGGED = "flagged"
    REPLY_QUEUED = "reply_queued"
    REPLY_WITHHELD = "reply_withheld"
    REMINDER_QUEUED = "reminder_queued"
    CUSTOMER_MESSAGE = "customer_message"
    STAFF_ALERTED = "staff_alerted"
    DOCUMENTS_RECEIVED = "documents_received"
    EXTENDED = "extended"
    RESPONDED = "responded"
    CLOSED = "closed"
    ABANDONED = "abandoned"
    KINDS_SET = "kinds_set"
    SORTER_GUESSES = "sorter_guesses"  # the sorter was unsure: its best guesses for staff
    SENT = "sent"
    SEND_FAILED = "send_failed"
    SEND_UNCERTAIN = "send_uncertain"
    PURGED = "purged"
    IDENTITY_VERIFIED = "identity_verified"
    DOCUMENTS_INSUFFICIENT = "documents_insufficient"
    OUTCOME_RECORDED = "outcome_recorded"
    HANDLED = "handled"  # staff read the customer's message; no reply needed
    RECIPIENT_REFUSED = "recipient_refused"  # nothing queued: the recipient failed the outbox's check


class Identity(enum.StrEnum):
    """The identity check of a rights request, once staff looked at the documents."""

    VERIFIED = "verified"
    INSUFFICIENT = "insufficient"  # the customer was asked for better documents; the clock waits


class CaseOutcome(enum.StrEnum):
    """What the written answer said (SPEC section 6)."""

    DONE = "done"
    PARTLY_DONE = "partly_done"
    REFUSED = "refused"
    NO_DATA = "no_data"


# outcomes the customer must be given a reason for
OUTCOMES_WITH_REASON: frozenset[CaseOutcome] = frozenset({CaseOutcome.PARTLY_DONE, CaseOutcome.REFUSED})


class Delivery(enum.StrEnum):
    """Where an outbox row is: pending -> claimed (by a worker) -> committing (final "." about to be
    written) -> sent; or back to pending (retry), failed (refused for good), uncertain (may have been
    delivered: never sent again)."""

    PENDING = "pending"
    CLAIMED = "claimed"
    COMMITTING = "committing"
    SENT = "sent"
    FAILED = "failed"
    UNCERTAIN = "uncertain"


IN_FLIGHT: frozenset[Delivery] = frozenset({Delivery.CLAIMED, Delivery.COMMITTING})


def kinds_in_order(kinds: set[Kind] | frozenset[Kind] | tuple[Kind, ...]) -> tuple[Kind, ...]:
    return tuple(k for k in KIND_ORDER if k in kinds)


@dataclass(frozen=True)
class Sender:
    """Who the bot's mail comes from, and how Japanese text is encoded (from the settings)."""

    address: str
    name: str
    japanese_charset: str = "utf-8"

    @property
    def domain(self) -> str:
        """The privacy address's domain, for Message-IDs; a placeholder when the address has none."""
        return self.address.rpartition("@")[2] or "privacy-bot.invalid"


class DefectCode(enum.StrEnum):
    """Kinds of trouble the parser worked around."""

    CHARSET = "charset"  # text not in its declared charset, or in none
    TOO_MANY_HEADERS = "too_many_headers"
    BAD_DATE = "bad_date"
    MESSAGE_ID = "message_id"  # unusable or without angle brackets
    MIME = "mime"  # a structural defect the email package found
    TOO_MANY_PARTS = "too_many_parts"
    TOO_DEEP = "too_deep"
    STRUCTURE = "structure"  # the MIME structure could not be parsed at all
    HTML = "html"
    TEXT_CUT = "text_cut"


@dataclass(frozen=True)
class Defect:
    """Something wrong with a mail that could be worked around: what kind, and in words where."""

    code: DefectCode
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True)
class InboundEmail:
    """One received mail, decoded. Built by `bot.core.parse.parse_message`, which never raises.

    Addresses are lower-cased bare addresses ("a@b.jp"), "" when absent or unparsable.
    Message ids keep their angle brackets ("<x@y>").
    """

    message_id: str
    message_id_synthetic: bool
    from_addr: str
    from_name: str
    reply_to: str
    to_addrs: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html_only: bool
    attachments: tuple[Attachment, ...]
    # Every header as (lower-cased name, decoded value), in order, for the classifier.
    headers: tuple[tuple[str, str], ...]
    content_type: str  # top-level, lower-cased, e.g. "multipart/report"
    report_type: str  # the report-type parameter of multipart/report, lower-cased, or ""
    size: int  # bytes of the raw message as received (or as reported by IMAP when fetched in part)
    truncated: bool = False  # fetched in part because it was too large
    defects: tuple[Defect, ...] = ()  # what was wrong but could be worked around
    parse_error: str = ""  # non-empty: the mail could not be understood; quarantine it with this reason

    def header(self, name: str) -> str:
        """The first value of a header, "" if absent."""
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return ""

    def header_all(self, name: str) -> tuple[str, ...]:
        name = name.lower()
        return tuple(value for key, value in self.headers if key == name)

    @property
    def defect_texts(self) -> tuple[str, ...]:
        return tuple(d.text for d in self.defects)

    @property
    def reply_address(self) -> str:
        return self.reply_to or self.from_addr

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message ids this mail answers, nearest first."""
        seen: dict[str, None] = {}
        for mid in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(mid, None)
        return tuple(seen)


@dataclass(frozen=True)
class Classification:
    """What the sorter understood. Built by `bot.core.classify.classify`, pure."""

    kinds: tuple[Kind, ...]  # in KIND_ORDER; empty when nothing matched
    language: str  # "ja" or "en"
    rules: tuple[str, ...] = ()  # ids of the rules that fired, for the case history
    suppress: Suppress | None = None  # set: never reply
    suppress_evidence: str = ""  # which header/heuristic decided it
    ref: str = ""  # case reference found in the subject, e.g. "PRV-2026-00042"
    flags: tuple[Flag, ...] = ()  # warnings for staff
    # Kinds the sorter's model could neither confirm nor rule out: the mail goes to staff, no form.
    unsure: tuple[Kind, ...] = ()
    scores: tuple[tuple[Kind, float], ...] = ()  # the model's probability per kind, highest first
    recipient: str = ""  # where an answer goes: From, or Reply-To for an authenticated sender
    authenticated: bool = False  # a trusted Authentication-Results header says pass (SPEC section 9)
    error: str = ""  # the sorter failed: nothing is sent, staff look at the mail


@dataclass(frozen=True)
class Attached:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class OutboundEmail:
    """A reply ready to be serialised and queued. Built by `bot.compose.message`."""

    to_addr: str
    subject: str
    text: str
    message_id: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    auto_submitted: str = "auto-replied"
    html: str = ""
    attachments: tuple[Attached, ...] = ()
    language: str = "en"
    extra_headers: tuple[tuple[str, str], ...] = field(default=())


@dataclass(frozen=True)
class CaseRecord:
    """A case as staff and scripts see it, read from the store."""

    ref: str
    status: Status
    kinds: tuple[Kind, ...]
    requester: str
    language: str
    flags: tuple[Flag, ...]
    opened_at: datetime
    documents_received_at: datetime | None = None
    due_at: datetime | None = None
    responded_at: datetime | None = None
    closed_at: datetime | None = None
    requester_name: str = ""
    subject: str = ""
    identity: Identity | None = None
    identity_document: str = ""
    outcome: CaseOutcome | None = None
    outcome_reason: str = ""
    outcome_at: datetime | None = None
    customer_waiting_since: datetime | None = None  # a customer's message joined and staff have not acted since
    sender_verified: bool = False  # the inquiry's sender was authenticated: its name and subject may be echoed

    @property
    def customer_waiting(self) -> bool:
        return self.customer_waiting_since is not None

    def overdue(self, now: datetime) -> bool:
        return self.due_at is not None and self.responded_at is None and self.closed_at is None and now > self.due_at


@dataclass(frozen=True)
class QuarantinedMail:
    """A mail the bot could not read, for the digest."""

    uid: int | None
    recorded_at: datetime
    reason: str
