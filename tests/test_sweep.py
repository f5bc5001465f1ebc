"""Follow-ups over two months with the clock passed in, against a real database and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.adapters.imap import Fetched
from bot.adapters.locks import Presence
from bot.adapters.smtp import Mailer
from bot.adapters.store.engine import make_engine
from bot.adapters.store.tables import CaseRow, EventRow, OutboxRow
from bot.app.intake import Intake
from bot.app.mailing import Mailing
from bot.app.notify import Notifier
from bot.app.outbox import FlushReport, flush
from bot.app.sweep import sweep_once
from bot.compose.templates import Renderer
from bot.settings import Settings, load_rules, load_settings
from tests.botrun import ROOT, write_config
from tests.factories import legacy_japanese_mail, mail_bytes

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, db_url: str, smtp_sink) -> Settings:
    return load_settings(write_config(tmp_path, imap_port=10143, smtp_port=smtp_sink.port, db_url=db_url))


@pytest.fixture
def engines(settings: Settings) -> Iterator[list]:
    made: list = []
    yield made
    for engine in made:
        engine.dispose()


def send(engine: Engine, settings: Settings, now: datetime) -> FlushReport:
    with Presence(engine) as worker:
        return flush(engine, Mailer(settings.smtp), worker, now)


def restart(settings: Settings, engines: list):
    """A fresh engine and renderer, as after a restart of the bot."""
    engine = make_engine(settings.database.url)
    engines.append(engine)
    return engine, Renderer(ROOT / "templates")


def test_reminders_and_abandonment_happen_once_on_the_right_day(settings, engines, smtp_sink) -> None:
    engine, renderer = restart(settings, engines)
    intake = Intake(Mailing(settings, renderer), engine, load_rules(ROOT / "config" / "rules.toml"))
    en = mail_bytes(sender="ruth@example.com", subject="My data", message_id="<r@x>",
                    body="Please send me a copy of my personal data.")
    ja = legacy_japanese_mail(sender="ken@example.jp", subject="削除", body="私の個人情報を削除してください。",
                              charset="iso-2022-jp", message_id="<k@x>")
    for uid, raw in enumerate((en, ja), 1):
        intake.take_in("box", 1, Fetched(uid, raw, len(raw), False), T0)
    send(engine, settings, T0)
    assert len(smtp_sink.wait_for(2)) == 2

    timeline = {}
    for day in (1, 13, 14, 14, 15, 27, 28, 29, 40, 59, 60, 61):
        engine, renderer = restart(settings, engines)
        now = T0 + timedelta(days=day, hours=1)
        done = sweep_once(engine, Mailing(settings, renderer), Notifier(settings), now)
        send(engine, settings, now)
        timeline.setdefault(day, []).extend(sorted(f"{f.ref[-1]}:{f.purpose}" for f in done))
    assert timeline == {1: [], 13: [], 14: ["1:reminder14", "2:reminder14"], 15: [], 27: [],
                        28: ["1:reminder28", "2:reminder28"], 29: [], 40: [], 59: [],
                        60: ["1:abandon", "2:abandon"], 61: []}

    sent = smtp_sink.messages()
    reminders = [m for m in sent if m.message["Auto-Submitted"] == "auto-generated"]
    assert len(reminders) == 4
    for m in reminders:
        text = next(p.get_content() for p in m.message.walk() if p.get_content_type() == "text/plain")
        if m.rcpt_tos == ("ken@example.jp",):
            assert sum("\u3040" <= ch <= "\u30ff" for ch in text) > 20  # written in Japanese
        else:
            assert "reminder" in m.message["Subject"].lower()
        assert m.message["In-Reply-To"] in ("<r@x>", "<k@x>")
        assert any(p.get_content_type() == "application/pdf" for p in m.message.walk())
    with Session(engine) as s:
        assert {c.status for c in s.exec(select(CaseRow)).all()} == {"closed"}
        assert len([e for e in s.exec(select(EventRow)).all() if e.kind == "abandoned"]) == 2
        assert len(s.exec(select(OutboxRow).where(OutboxRow.status == "sent")).all()) == 6


def test_a_second_sweep_from_another_process_queues_nothing(settings, engines, smtp_sink) -> None:
    engine, renderer = restart(settings, engines)
    intake = Intake(Mailing(settings, renderer), engine, load_rules(ROOT / "config" / "rules.toml"))
    raw = mail_bytes(sender="ruth@example.com", subject="My data", message_id="<r@x>",
                     body="Please send me a copy of my personal data.")
    intake.take_in("box", 1, Fetched(1, raw, len(raw), False), T0)
    send(engine, settings, T0)  # reminders follow only an acknowledgement that was sent
    now = T0 + timedelta(days=14, hours=1)
    other, _ = restart(settings, engines)
    first = sweep_once(engine, Mailing(settings, renderer), Notifier(settings), now)
    second = sweep_once(other, Mailing(settings, renderer), Notifier(settings), now)
    assert [f.purpose for f in first] == ["reminder14"] and second == []
    with Session(engine) as s:
        assert len(s.exec(select(OutboxRow).where(OutboxRow.purpose == "reminder14")).all()) == 1


def test_daily_digest_once_per_day_and_once_after_downtime(settings, engines, smtp_sink) -> None:
    from bot.app.service import Bot

    staffed = settings.model_copy(update={"staff": settings.staff.model_copy(
        update={"digest_recipients": ["dpo@example.com"]})})
    engine, _ = restart(settings, engines)
    clock = {"now": datetime(2026, 12, 1, 0, 30, tzinfo=UTC)}  # 09:30 in Tokyo, after digest_time
    bot = Bot(staffed, clock=lambda: clock["now"], engine=engine)
    bot.daily_digest()
    bot.daily_digest()  # a restart the same day: nothing new
    assert len(smtp_sink.wait_for(1)) == 1
    clock["now"] += timedelta(days=3)  # down for three days: one digest at start, not three
    bot.daily_digest()
    bot.daily_digest()
    sent = smtp_sink.wait_for(2)
    bot.close()
    assert len(sent) == 2 and all(m.rcpt_tos == ("dpo@example.com",) for m in sent)
    assert {p.get_content_type() for p in sent[1].message.walk()} >= {"text/plain", "text/html"}


def test_staff_warned_before_due_and_escalated_once_a_day_when_overdue(settings, engines, smtp_sink) -> None:
    from zoneinfo import ZoneInfo

    from bot.core.lifecycle import CasePolicy, DocsReceived, Responded
    from bot.staff import actions as staff

    staffed = settings.model_copy(update={"staff": settings.staff.model_copy(
        update={"digest_recipients": ["dpo@example.com"], "language": "ja"})})
    engine, renderer = restart(staffed, engines)
    intake = Intake(Mailing(staffed, renderer), engine, load_rules(ROOT / "config" / "rules.toml"))
    raw = mail_bytes(sender="ruth@example.com", subject="My data", message_id="<r@x>",
                     body="Please send me a copy of my personal data.")
    ref = intake.take_in("box", 1, Fetched(1, raw, len(raw), False), T0).ref
    tokyo = ZoneInfo("Asia/Tokyo")
    policy = CasePolicy(response_days=14, zone=tokyo)
    staff.apply(engine, ref, DocsReceived(T0 + timedelta(days=2)), now=T0 + timedelta(days=2), policy=policy,
                actor="staff")  # due 2026-12-17 23:59:59 JST

    def sweep(day: float) -> list[str]:
        engine, renderer = restart(staffed, engines)
        return [f.purpose for f in sweep_once(engine, Mailing(staffed, renderer), Notifier(staffed), T0 + timedelta(days=day))]

    assert sweep(10) == []
    assert sweep(14) == ["warn-due"] and sweep(14.5) == []
    assert sweep(17) == ["escalate-2026-12-18"] and sweep(17.1) == []
    assert sweep(18) == ["escalate-2026-12-19"]
    staff.apply(engine, ref, Responded(T0 + timedelta(days=18)), now=T0 + timedelta(days=18), policy=policy,
                actor="staff")
    assert sweep(19) == []
    send(engine, staffed, T0 + timedelta(days=19))
    alerts = [m for m in smtp_sink.wait_for(4) if m.rcpt_tos == ("dpo@example.com",)]
    assert len(alerts) == 3
    subjects = sorted(str(m.message["Subject"]) for m in alerts)  # sent over several connections: any order
    assert sum("期限超過" in s for s in subjects) == 2 and sum("期限間近" in s for s in subjects) == 1
    assert all(s.startswith(f"[{ref}]") for s in subjects)


def test_reminders_only_after_a_sent_acknowledgement_and_they_count(settings, engines, smtp_sink) -> None:
    """Issue 10, finding 3: over the per-sender cap a case is still opened, but it gets no
    acknowledgement, so no day-14 or day-28 reminder either; reminders count toward the limits."""
    engine, renderer = restart(settings, engines)
    intake = Intake(Mailing(settings, renderer), engine, load_rules(ROOT / "config" / "rules.toml"))
    for uid in range(1, 6):  # the cap is 3 a day: 3 acknowledgements, 2 cases for staff
        raw = mail_bytes(sender=f"Victim+{uid}@Example.com", subject="My data", message_id=f"<v{uid}@x>",
                         body="Please send me a copy of my personal data.")
        intake.take_in("box", 1, Fetched(uid, raw, len(raw), False), T0 + timedelta(minutes=uid))
    send(engine, settings, T0 + timedelta(minutes=10))
    assert len(smtp_sink.wait_for(3)) == 3
    # a rights case whose acknowledgement was queued but never sent (still pending): no reminder either
    raw = mail_bytes(sender="late@example.org", subject="My data", message_id="<late@x>", body="Please delete my data.")
    assert intake.take_in("box", 1, Fetched(8, raw, len(raw), False), T0 + timedelta(minutes=20)).replied
    now = T0 + timedelta(days=14, hours=1)
    done = sweep_once(engine, Mailing(settings, renderer), Notifier(settings), now)
    assert [f.purpose for f in done] == ["reminder14"] * 3
    with Session(engine) as s:
        reminders = s.exec(select(OutboxRow).where(OutboxRow.purpose == "reminder14")).all()
        assert len(reminders) == 3 and all(r.automatic and r.to_norm == "victim@example.com" for r in reminders)
    # the reminders used the day's allowance: a new inquiry from the same person now waits for staff
    raw = mail_bytes(sender="victim@example.com", subject="My data", message_id="<v9@x>",
                     body="Please send me a copy of my personal data.")
    assert not intake.take_in("box", 1, Fetched(9, raw, len(raw), False), now).replied
