"""Several workers on one database: claims never overlap, a dead worker's claims come back, and
two `run` processes with a killed leader answer every inquiry exactly once (issue 5)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.locks import Presence
from bot.adapters.store.engine import make_engine, transaction
from bot.adapters.store.outbox import claim
from bot.adapters.store.tables import CaseRow, EventRow, OutboxRow
from bot.app.outbox import recover
from tests.botrun import bot_process, cases, wait_health, with_health, write_config
from tests.factories import mail_bytes

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
DEAD = "nohost.invalid:999999:1:dead"  # a worker that no process answers to


def _rows(engine: Engine, count: int, *, status: str = "pending", claimed_by: str = "") -> None:
    with transaction(engine) as session:
        case = CaseRow(ref="PRV-2026-00001", status="new", requester="a@example.com", opened_at=NOW, updated_at=NOW)
        session.add(case)
        session.flush()
        for i in range(count):
            # one mail per case, purpose and recipient (the outbox's unique index): each row its own purpose
            session.add(OutboxRow(case_id=case.id, purpose=f"reply.{i}", message_id=f"<m{i}@bot.test>", to_addr="a@example.com",
                                  raw=b"Subject: x\r\n\r\nx\r\n", status=status, claimed_by=claimed_by,
                                  next_attempt_at=NOW, created_at=NOW))


def _statuses(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        return Counter(session.exec(select(OutboxRow.status)).all())


def test_a_row_is_claimed_by_one_worker_only(db_url: str) -> None:
    engine = make_engine(db_url)
    _rows(engine, 400)
    with Presence(engine) as a, Presence(engine) as b, ThreadPoolExecutor(2) as pool:
        got_a, got_b = pool.map(lambda w: [key for key, _to, _raw in claim(engine, w.id, NOW, 1000)], (a, b))
        assert not set(got_a) & set(got_b)
        assert len(got_a) + len(got_b) == 400
        assert claim(engine, a.id, NOW, 1000) == []
    engine.dispose()


def test_claims_of_a_dead_worker_come_back_and_handed_over_mail_is_never_resent(db_url: str) -> None:
    engine = make_engine(db_url)
    _rows(engine, 1, status="claimed", claimed_by=DEAD.replace("nohost.invalid", _host()))
    with transaction(engine) as session:
        row = OutboxRow(purpose="reply.late", message_id="<late@bot.test>", to_addr="b@example.com", raw=b"x",
                        status="committing", claimed_by=DEAD.replace("nohost.invalid", _host()),
                        next_attempt_at=NOW, created_at=NOW, case_id=1)
        session.add(row)
    with Presence(engine) as me:
        _rows_of_live = OutboxRow(purpose="ack", message_id="<live@bot.test>", to_addr="c@example.com", raw=b"x",
                                  status="claimed", claimed_by=me.id, next_attempt_at=NOW, created_at=NOW)
        with transaction(engine) as session:
            session.add(_rows_of_live)
        assert recover(engine, me, NOW) == 2
        assert _statuses(engine) == Counter({"pending": 1, "uncertain": 1, "claimed": 1})  # our own claim stays
        with Session(engine) as session:
            events = session.exec(select(EventRow.kind)).all()
        assert events == ["send_uncertain"]  # staff see it in the case history
    engine.dispose()


def _host() -> str:
    import socket

    return socket.gethostname()


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    from tests.conftest import PG_URL

    pg = request.getfixturevalue("_pg")
    name = pg.create()
    try:
        yield PG_URL.format(name=name)
    finally:
        pg.drop(name)


@pytest.mark.integration
def test_two_processes_and_a_killed_leader_answer_each_inquiry_once(tmp_path: Path, mailbox, smtp_sink,
                                                                     pg_url: str) -> None:
    mails = 200
    volume = {"policy": {"max_auto_replies_per_domain_per_hour": 1000, "max_auto_replies_per_hour": 1000}}  # not the limits
    cfgs = {name: write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=pg_url,
                               name=f"{name}.toml", overrides=volume) for name in ("a", "b")}
    ports = {name: with_health(cfg) for name, cfg in cfgs.items()}
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    with logs["a"].open("w") as log_a, logs["b"].open("w") as log_b:
        a = bot_process(cfgs["a"], "run", stderr=log_a)
        wait_health(ports["a"], timeout=20, role="leader")
        b = bot_process(cfgs["b"], "run", stderr=log_b)
        wait_health(ports["b"], timeout=20, role="standby")
        mailbox.append([mail_bytes(sender=f"c{i}@example.com", subject=f"Request {i}", message_id=f"<s{i}@customer.test>",
                                   body="Please delete my personal data.") for i in range(mails)])
        smtp_sink.wait_for(mails // 4, timeout=60)
        a.send_signal(signal.SIGKILL)
        a.communicate(timeout=10)
        killed = time.monotonic()
        wait_health(ports["b"], timeout=15, role="leader")
        took_over = time.monotonic() - killed
        try:
            smtp_sink.wait_for(mails, timeout=120)
        finally:
            b.send_signal(signal.SIGTERM)
            b.communicate(timeout=30)
    sent = smtp_sink.messages()
    per_inquiry = Counter(str(m.message["In-Reply-To"]) for m in sent)
    print(f"\nmails={mails} replies={len(sent)} take-over={took_over}s "
          f"sent-by-follower={'sent outbox' in logs['b'].read_text()}")
    assert took_over is not None and took_over < 10, logs["b"].read_text()[-2000:]
    assert {k: v for k, v in per_inquiry.items() if v > 1} == {}
    assert all(per_inquiry[f"<s{i}@customer.test>"] == 1 for i in range(mails))
    assert len(cases(cfgs["a"])) == mails
