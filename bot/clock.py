"""The response clock, pure: when a written answer is due.

Due = the day the documents arrived + response_days, counted in the configured time zone,
and due by the end of that day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def end_of_day(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(23, 59, 59), tzinfo=zone)


def due_at(received: datetime, response_days: int, zone: ZoneInfo) -> datetime:
    local_day = received.astimezone(zone).date()
    return end_of_day(local_day + timedelta(days=response_days), zone)


def parse_when(text: str, zone: ZoneInfo) -> datetime:
    """A date (2026-12-04) or date-time (2026-12-04T10:30, with or without offset) given by staff."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(12, 0), tzinfo=zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM)") from None
    return value if value.tzinfo else value.replace(tzinfo=zone)
