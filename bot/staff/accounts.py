"""Console accounts: one function per thing an admin or a person signing in does.

Passwords are hashed with Argon2id (argon2-cffi's defaults); after MAX_FAILURES failed sign-ins an
account waits LOCK_MINUTES (bot.core.signin); a password change or disabling ends the account's
sessions (its session epoch moves on)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bot.adapters.store import accounts as store
from bot.adapters.store.accounts import Account
from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import AccountRow
from bot.core.errors import UsageError
from bot.core.signin import Throttle, attempt


class Role(StrEnum):
    VIEWER = "viewer"  # reads
    STAFF = "staff"  # also acts on cases and replies
    ADMIN = "admin"  # also sees templates and quarantine


RANK = {Role.VIEWER: 0, Role.STAFF: 1, Role.ADMIN: 2}
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
_NAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
_HASHER = PasswordHasher()  # Argon2id
_DUMMY_HASH = _HASHER.hash("not a password of anyone: keeps unknown names as slow as known ones")


def may(role: str, needed: Role) -> bool:
    try:
        return RANK[Role(role)] >= RANK[needed]
    except ValueError:
        return False


def check_name(name: str) -> str:
    clean = name.strip().lower()
    if not _NAME.match(clean):
        raise UsageError(f"account name {name!r}: use 1-64 letters, digits and . _ @ - (starting with a letter or digit)")
    return clean


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UsageError(f"the password is too long: at most {MAX_PASSWORD} characters")
    return password


def add(engine: Engine, name: str, role: str, password: str, *, now: datetime) -> Account:
    name = check_name(name)
    try:
        role_ = Role(role)
    except ValueError:
        raise UsageError(f"role {role!r}: use viewer, staff or admin") from None
    digest = _HASHER.hash(check_password(password))
    try:
        with transaction(engine) as session:
            if store.find(session, name) is not None:
                raise UsageError(f"an account named {name} already exists (users password {name} changes its password)")
            store.insert(session, name=name, role=role_.value, password_hash=digest, now=now)
    except IntegrityError:
        raise UsageError(f"an account named {name} already exists") from None
    account = store.get(engine, name)
    assert account is not None
    return account


def accounts(engine: Engine) -> list[Account]:
    return store.all_accounts(engine)


def disable(engine: Engine, name: str, *, now: datetime) -> Account:
    with transaction(engine) as session:
        row = _existing(session, name)
        row.disabled = True
        row.session_epoch += 1
        row.updated_at = now
        session.add(row)
        return store.account_of(row)


def set_password(engine: Engine, name: str, password: str, *, now: datetime) -> Account:
    digest = _HASHER.hash(check_password(password))
    with transaction(engine) as session:
        row = _existing(session, name)
        row.password_hash = digest
        row.session_epoch += 1
        row.failed_logins, row.locked_until = 0, None
        row.updated_at = now
        session.add(row)
        return store.account_of(row)


@dataclass(frozen=True)
class SignIn:
    account: Account | None  # set when signed in
    wait: timedelta | None = None  # the account waits this long before it may try again


def _existing(session: Session, name: str) -> AccountRow:
    """The account named `name`, locked for the change; UsageError when there is none."""
    row = store.find(session, check_name(name), for_update=True)
    if row is None:
        raise UsageError(f"no account named {name}")
    return row


def sign_in(engine: Engine, name: str, password: str, *, now: datetime) -> SignIn:
    """Check a sign-in and count it against the account. Unknown names, disabled accounts and wrong
    passwords look alike to the person signing in."""
    try:
        name = check_name(name)
    except UsageError:
        name = ""
    with transaction(engine) as session:
        row = store.find(session, name, for_update=True) if name else None
        if row is None:
            _verify(_DUMMY_HASH, password)
            return SignIn(None)
        throttle = Throttle(row.failed_logins, row.locked_until)
        waiting = throttle.waiting(now)
        ok = not row.disabled and waiting is None and _verify(row.password_hash, password)
        verdict = attempt(throttle, password_ok=ok, now=now)
        row.failed_logins, row.locked_until = verdict.throttle.failures, verdict.throttle.locked_until
        if verdict.allowed:
            row.last_login_at = now
            if _HASHER.check_needs_rehash(row.password_hash):
                row.password_hash = _HASHER.hash(password)
        row.updated_at = now
        session.add(row)
        return SignIn(store.account_of(row) if verdict.allowed else None, verdict.wait)


def _verify(digest: str, password: str) -> bool:
    try:
        return bool(_HASHER.verify(digest, password[:MAX_PASSWORD]))
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def active(engine: Engine, name: str, epoch: int) -> Account | None:
    """The account a session names, if that session still stands (not disabled, password unchanged)."""
    account = store.get(engine, name)
    if account is None or account.disabled or account.session_epoch != epoch:
        return None
    return account
