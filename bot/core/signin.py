"""Sign-in throttling for the staff console, pure: after MAX_FAILURES failed sign-ins an account waits
LOCK_MINUTES, whatever password is given meanwhile; a successful sign-in clears the count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_FAILURES = 5
LOCK_MINUTES = 15


@dataclass(frozen=True)
class Throttle:
    """An account's count of failed sign-ins since its last success, and until when it waits."""

    failures: int = 0
    locked_until: datetime | None = None

    def waiting(self, now: datetime) -> timedelta | None:
        """How long the account still waits; None when it may try."""
        if self.locked_until is not None and now < self.locked_until:
            return self.locked_until - now
        return None


@dataclass(frozen=True)
class Attempt:
    allowed: bool  # the password was right and the account was not waiting
    throttle: Throttle  # the account's count after this attempt
    wait: timedelta | None = None  # set when the account waits (now or from this attempt on)


def attempt(throttle: Throttle, *, password_ok: bool, now: datetime) -> Attempt:
    """The verdict on one sign-in and the account's new count. While the account waits, even the right
    password is refused (and the wait is not lengthened); once it has waited, counting starts again."""
    wait = throttle.waiting(now)
    if wait is not None:
        return Attempt(False, throttle, wait)
    if throttle.locked_until is not None:  # the wait is over: a fresh start
        throttle = Throttle()
    if password_ok:
        return Attempt(True, Throttle())
    failures = throttle.failures + 1
    if failures >= MAX_FAILURES:
        until = now + timedelta(minutes=LOCK_MINUTES)
        return Attempt(False, Throttle(failures, until), until - now)
    return Attempt(False, Throttle(failures))
