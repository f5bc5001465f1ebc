"""Frozen values that travel between the layers: parse -> classify -> decide -> store -> send.

Nothing here touches a socket, a file or the database.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Kind(str, enum.Enum):
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


class Status(str, enum.Enum):
    AWAITING_DOCUMENTS = "awaiting_documents"
    IN_PROGRESS = "in_progress"
    RESPONDED = "responded"
    CLOSED = "closed"
    NEEDS_STAFF = "needs_staff"


class Suppress(str, enum.Enum):
    """Why a mail must never get an automatic reply."""

    BOUNCE = "bounce"
    AUTO_REPLY = "auto_reply"
    BULK = "bulk"
    NO_REPLY_SENDER = "no_reply_sender"
    OWN_ADDRESS = "own_address"
    INVALID_ADDRESS = "invalid_address"


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
    defects: tuple[str, ...] = ()  # what was wrong but could be worked around
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
    flags: tuple[str, ...] = ()  # warnings for staff, e.g. "dmarc_fail"


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
