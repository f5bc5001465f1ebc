"""Console accounts in the store: rows in, plain values out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from bot.adapters.store.engine import transaction
from bot.adapters.store.tables import AccountRow


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    disabled: bool
    failed_logins: int
    locked_until: datetime | None
    session_epoch: int
    created_at: datetime
    last_login_at: datetime | None


def account_of(row: AccountRow) -> Account:
    return Account(row.name, row.role, row.disabled, row.failed_logins, row.locked_until, row.session_epoch,
                   row.created_at, row.last_login_at)


def find(session: Session, name: str, *, for_update: bool = False) -> AccountRow | None:
    query = select(AccountRow).where(AccountRow.name == name)
    if for_update:
        query = query.with_for_update()
    return session.exec(query).first()


def insert(session: Session, *, name: str, role: str, password_hash: str, now: datetime) -> None:
    session.add(AccountRow(name=name, role=role, password_hash=password_hash, created_at=now, updated_at=now))
    session.flush()


def all_accounts(engine: Engine) -> list[Account]:
    with transaction(engine) as session:
        return [account_of(r) for r in session.exec(select(AccountRow).order_by(col(AccountRow.name))).all()]


def get(engine: Engine, name: str) -> Account | None:
    with transaction(engine) as session:
        row = find(session, name)
        return account_of(row) if row else None
