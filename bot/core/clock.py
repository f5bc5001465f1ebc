"""The response clock, pure: when a written answer is due.

Due = the local day the documents arrived + response_days, due by the end of that day, in the
configured time zone. Days are calendar days by default; with business days, weekends, Japanese
public holidays (the `holidays` package) and the company's closures (e.g. 12-29..01-03) are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

_CLOSURE = re.compile(r"^(\d{2})-(\d{2})\.\.(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Calendar:
    zone: ZoneInfo
    business_days: bool = False
    closures: tuple[str, ...] = ()  # yearly ranges "MM-DD..MM-DD", may wrap the year end

    def is_closed(self, day: date) -> bool:
        md = (day.month, day.day)
        for spec in self.closures:
            start, end = parse_closure(spec)
            if (start <= md <= end) if start <= end else (md >= start or md <= end):
                return True
        return False

    def is_business_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in _japanese_holidays(day.year) and not self.is_closed(day)

    def add_days(self, start: date, days: int) -> date:
        if not self.business_days:
            return start + timedelta(days=days)
        day, left = start, days
        while left > 0:
            day += timedelta(days=1)
            if self.is_business_day(day):
                left -= 1
        return day


def parse_closure(spec: str) -> tuple[tuple[int, int], tuple[int, int]]:
    m = _CLOSURE.match(spec)
    if not m:
        raise ValueError(f"closure {spec!r} is not MM-DD..MM-DD")
    sm, sd, em, ed = (int(g) for g in m.groups())
    for month, day in ((sm, sd), (em, ed)):
        date(2000, month, day)  # raises ValueError for 02-30 and the like (2000 is a leap year)
    return (sm, sd), (em, ed)


@lru_cache(maxsize=64)
def _japanese_holidays(year: int) -> Container[date]:
    import holidays  # only business days need it, and it takes a tenth of a second to import

    return holidays.country_holidays("JP", years=[year])


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def due_at(received: datetime, response_days: int, zone: ZoneInfo, calendar: Calendar | None = None) -> datetime:
    cal = calendar or Calendar(zone)
    local_day = received.astimezone(zone).date()
    return end_of_day(cal.add_days(local_day, response_days), zone)


def ack_due(opened: datetime, target_hours: int) -> datetime:
    """When the first acknowledgement should have gone out at the latest."""
    return opened + timedelta(hours=target_hours)


def parse_when(text: str, zone: ZoneInfo) -> datetime:
    """A date (2026-12-04) or date-time (2026-12-04T10:30, with or without offset) given by staff."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(12, 0), tzinfo=zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def date_problem(on: datetime, *, opened_at: datetime, now: datetime, zone: ZoneInfo,
                 allow_future: bool = False) -> str:
    """Why a date staff gave for a step of the case cannot be right ("" when it can): after today, or
    before the case was opened (compared as local days)."""
    day = on.astimezone(zone).date()
    if not allow_future and day > now.astimezone(zone).date():
        return f"{day.isoformat()} is in the future"
    opened = opened_at.astimezone(zone).date()
    if day < opened:
        return f"{day.isoformat()} is before the case was opened ({opened.isoformat()})"
    return ""
