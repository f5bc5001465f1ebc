"""Issue 10: the failure counts of mail that could not be taken in (bot/adapters/store/ledger.py), on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from bot.adapters.store import ledger
from bot.adapters.store.engine import make_engine
from bot.adapters.store.tables import CounterRow, LedgerRow, MessageRow

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
BOX = "bot@127.0.0.1:993/INBOX"


def test_failures_are_counted_listed_and_end_in_quarantine(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        ledger.cursor(engine, BOX, 7, 1, NOW)
        assert [ledger.count_failure(engine, BOX, 7, 5) for _ in range(3)] == [1, 2, 3]
        assert ledger.count_failure(engine, BOX, 7, 9) == 1
        assert ledger.count_failure(engine, BOX, 8, 5) == 1  # another UIDVALIDITY: another mail
        assert ledger.count_failure(engine, "other", 7, 5) == 1  # another mailbox too
        assert ledger.failing(engine, BOX, 7) == [5, 9]
        ledger.quarantine(engine, BOX, 7, 5, 1234, "failed 3 times; last: fetching: RecursionError", NOW)
        assert ledger.failing(engine, BOX, 7) == [9]
        assert ledger.taken_in(engine, BOX, 7, [5, 9, 10]) == {5}
        with Session(engine) as session:
            [row] = session.exec(select(LedgerRow).where(LedgerRow.uid == 5)).all()
            message = session.get(MessageRow, row.message_row_id)
            assert row.outcome == "quarantined" and message is not None
            assert message.action == "quarantined" and "RecursionError" in message.reason and message.size == 1234
            assert all(len(c.name) <= 64 for c in session.exec(select(CounterRow)).all())
        ledger.quarantine(engine, BOX, 7, 5, 1234, "again", NOW)  # already in the ledger: nothing more
        ledger.forget_failures(engine, BOX, 7, [9])
        assert ledger.failing(engine, BOX, 7) == [] and ledger.failing(engine, BOX, 8) == [5]
        assert ledger.cursor(engine, BOX, 7, 1, NOW).last_uid == 5
    finally:
        engine.dispose()
