"""The staff digest as a pure summary of the cases at a moment (rendered by `bot.compose.notices`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.model import KIND_ORDER, CaseRecord, Kind, QuarantinedMail


@dataclass(frozen=True)
class Line:
    ref: str
    kinds: tuple[str, ...]
    status: str
    requester: str
    opened: str
    due: str
    days: int  # days waiting (awaiting documents) or days overdue / left, depending on the section
    flags: tuple[str, ...] = ()  # warnings for staff, e.g. dmarc_fail (the sender may be forged)
    identity: str = ""  # "", verified, insufficient
    outcome: str = ""  # "", done, partly_done, refused, no_data


@dataclass(frozen=True)
class Quarantined:
    uid: int | None
    recorded: str
    reason: str


@dataclass(frozen=True)
class Section:
    """The first `limit` lines of a digest section (most urgent first) and how many there are in all."""

    lines: tuple[Line, ...]
    total: int

    @property
    def more(self) -> int:
        return self.total - len(self.lines)

    def __iter__(self) -> Iterator[Line]:
        return iter(self.lines)


@dataclass(frozen=True)
class Digest:
    as_of: str
    since: str
    overdue: Section
    unacknowledged: Section  # open cases whose first acknowledgement is past its target
    due_soon: Section
    awaiting: Section
    needs_staff: Section
    waiting: Section  # a customer's message joined the case and staff have not acted since
    new: Section
    responded: Section
    closed: Section
    quarantined: tuple[Quarantined, ...]
    counts: tuple[tuple[str, int], ...]
    console_url: str = ""  # web.public_url: each line links to its case page
    corrected: int = 0  # cases opened in the last CORRECTION_DAYS whose kinds staff corrected
    opened_recently: int = 0  # cases opened in the last CORRECTION_DAYS

    @property
    def correction_rate(self) -> str:
        """"4.2 %" of the cases opened in the last 30 days had their kinds corrected by staff; "-" if none opened."""
        return f"{100 * self.corrected / self.opened_recently:.1f} %" if self.opened_recently else "-"


CORRECTION_DAYS = 30  # the digest's correction rate looks back this far
LINES_PER_SECTION = 50  # a digest is read by a person; `cases list` has the rest
SECTIONS = ("overdue", "unacknowledged", "due_soon", "awaiting", "needs_staff", "waiting", "new", "responded",
            "closed")


@dataclass(frozen=True)
class DigestFacts:
    """What the database says for one digest (see bot.staff.actions.digest_facts): per section, its first
    cases in order of urgency and how many there are; the quarantined mail; open cases by kind."""

    sections: Mapping[str, tuple[Sequence[CaseRecord], int]]
    quarantined: Sequence[QuarantinedMail]
    open_by_kinds: Mapping[tuple[Kind, ...], int]  # the kinds of open cases -> how many
    corrections: tuple[int, int] = (0, 0)  # (corrected by staff, opened) in the last CORRECTION_DAYS


def _zero(_case: CaseRecord) -> int:
    return 0


def build_digest(facts: DigestFacts, *, as_of: datetime, since: datetime, zone: ZoneInfo,
                 console_url: str = "") -> Digest:
    def day(value: datetime | None) -> str:
        return value.astimezone(zone).strftime("%Y-%m-%d") if value else ""

    def waited(c: CaseRecord) -> int:
        return (as_of - c.opened_at).days

    days: dict[str, Callable[[CaseRecord], int]] = {
        "overdue": lambda c: (as_of - (c.due_at or as_of)).days + 1,
        "due_soon": lambda c: ((c.due_at or as_of) - as_of).days,
        "unacknowledged": waited, "awaiting": waited, "needs_staff": waited,
        "waiting": lambda c: (as_of - (c.customer_waiting_since or as_of)).days,
    }

    def section(name: str) -> Section:
        chosen, total = facts.sections.get(name, ((), 0))
        count = days.get(name, _zero)
        return Section(tuple(Line(c.ref, tuple(k.value for k in c.kinds), c.status.value, c.requester,
                                  day(c.opened_at), day(c.due_at), count(c), tuple(f.value for f in c.flags),
                                  c.identity.value if c.identity else "", c.outcome.value if c.outcome else "")
                             for c in chosen), total)

    counts: Counter[str] = Counter()
    for kinds, n in facts.open_by_kinds.items():
        for k in kinds:
            counts[k.value] += n
    return Digest(
        as_of=as_of.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        since=since.astimezone(zone).strftime("%Y-%m-%d %H:%M"),
        overdue=section("overdue"), unacknowledged=section("unacknowledged"), due_soon=section("due_soon"),
        awaiting=section("awaiting"), needs_staff=section("needs_staff"), waiting=section("waiting"),
        new=section("new"),
        responded=section("responded"), closed=section("closed"),
        quarantined=tuple(Quarantined(m.uid, day(m.recorded_at), m.reason) for m in facts.quarantined),
        counts=tuple((k.value, counts[k.value]) for k in KIND_ORDER if counts[k.value]),
        console_url=console_url.rstrip("/"),
        corrected=facts.corrections[0], opened_recently=facts.corrections[1],
    )
