"""Two months of a privacy office through real Dovecot and SMTP, the clock passed in, the bot restarted each day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app.service import Bot
from bot.settings import load_settings
from tests.botrun import bot, write_config
from tests.factories import legacy_japanese_mail, mail_bytes

pytestmark = pytest.mark.integration
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo


def test_two_months_of_follow_ups_and_digests(tmp_path: Path, mailbox, smtp_sink, db_url) -> None:
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=db_url,
                       overrides={"staff": {"digest_recipients": ["dpo@bot.test"]}})
    settings = load_settings(cfg)
    mailbox.append([
        mail_bytes(sender="ruth@example.com", subject="My data", message_id="<en@x>",
                   body="Please send me a copy of my personal data."),
        legacy_japanese_mail(sender="ken@example.jp", subject="削除", body="私の個人情報を削除してください。",
                             charset="iso-2022-jp", message_id="<ja@x>"),
        mail_bytes(sender="aya@example.com", subject="Correction", message_id="<docs@x>",
                   body="My address in your records is wrong, please correct my details."),
    ])
    log: dict[int, list[tuple[str, str]]] = {}
    for day in range(0, 62):
        now = T0 + timedelta(days=day)
        before = len(smtp_sink.messages())
        b = Bot(settings, clock=lambda now=now: now)  # a restart every day
        b.run_once()
        b.daily_digest()
        b.close()
        b.engine.dispose()
        if day == 3:  # the third customer's documents arrive by post
            refs = {c["requester"]: c["ref"] for c in json.loads(
                bot(cfg, "cases", "list", "--json").stdout)}
            r = bot(cfg, "cases", "docs-received", refs["aya@example.com"], "--on", "2026-12-04")
            assert r.returncode == 0, r.stderr
        new = smtp_sink.messages()[before:]
        log[day] = sorted((m.rcpt_tos[0], str(m.message["Subject"]).split("] ", 1)[-1][:30]) for m in new)

    def days_with(rcpt: str, words: str) -> list[int]:
        return [d for d, items in log.items() for to, subject in items if to == rcpt and words in subject]

    assert days_with("ruth@example.com", "Reminder") == [14, 28]
    assert len([d for d, items in log.items() for to, _ in items if to == "ken@example.jp"]) == 3  # ack + 2
    ken_reminders = [m for m in smtp_sink.messages() if m.rcpt_tos == ("ken@example.jp",)
                     and m.message["Auto-Submitted"] == "auto-generated"]
    assert len(ken_reminders) == 2
    for m in ken_reminders:
        text = next(p.get_content() for p in m.message.walk() if p.get_content_type() == "text/plain")
        assert sum("\u3040" <= ch <= "\u30ff" for ch in text) > 20
    assert days_with("aya@example.com", "Reminder") == []  # documents arrived
    digests = [d for d, items in log.items() for to, s in items if to == "dpo@bot.test" and "digest" in s]
    assert digests == list(range(0, 62))  # one a day, never two
    assert days_with("dpo@bot.test", "Due soon") == [15]  # due 12-18 JST; warned within 3 days
    assert days_with("dpo@bot.test", "OVERDUE") == list(range(18, 62))  # once a day until answered
    states = {c["requester"]: c["status"] for c in json.loads(bot(cfg, "cases", "list", "--json").stdout)}
    assert states == {"ruth@example.com": "closed", "ken@example.jp": "closed", "aya@example.com": "in_progress"}


def test_twenty_forged_mails_in_a_day_give_the_victim_at_most_nine_mails_in_sixty_days(
        tmp_path: Path, mailbox, smtp_sink, db_url) -> None:
    """Issue 10, Done when: 20 forged mails from one address in one day (+tag and case variants, the
    attacker's display name and subject, a forged Authentication-Results line and Reply-To) give that
    address 3 acknowledgements and reminders only for those: at most 9 mails in the following 60 days,
    none of them echoing the attacker's words. The other 17 cases wait for staff, who are told once."""
    cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port, db_url=db_url,
                       overrides={"staff": {"digest_recipients": ["dpo@bot.test"]}})
    settings = load_settings(cfg)
    variants = ["victim@example.com", "Victim@Example.com", "VICTIM@EXAMPLE.COM", "victim+1@example.com",
                "Victim+promo@example.com", "victim+x.y@EXAMPLE.com"]
    forged = [mail_bytes(sender=f"Cheap Watches Shop <{variants[i % len(variants)]}>",
                         subject=f"Buy now at watches.example #{i}", message_id=f"<forged-{i}@spam.test>",
                         body="Please send me a copy of all my personal data and delete it.",
                         date=T0 + timedelta(minutes=i),
                         headers={"Reply-To": "attacker@spam.example",
                                  "Authentication-Results": "mx.bot.test; dkim=pass header.d=example.com; "
                                                            "dmarc=pass header.from=example.com"})
              for i in range(20)]
    mailbox.append(forged)
    for day in range(0, 61):
        now = T0 + timedelta(days=day, hours=day % 5)  # some days later in the day, as a real sweep would run
        b = Bot(settings, clock=lambda now=now: now)
        b.run_once()
        b.close()
        b.engine.dispose()

    to_victim = [m for m in smtp_sink.messages()
                 if any(r.lower().replace("+", "@").split("@")[0] == "victim" for r in m.rcpt_tos)]
    assert not [m for m in smtp_sink.messages() if "attacker@spam.example" in m.rcpt_tos]
    acks = [m for m in to_victim if m.message["Auto-Submitted"] == "auto-replied"]
    reminders = [m for m in to_victim if m.message["Auto-Submitted"] == "auto-generated"]
    assert len(acks) == 3 and len(reminders) == 6 and len(to_victim) <= 9
    acked_refs = {str(m.message["Subject"]).split("]")[0].strip("[") for m in acks}
    assert {str(m.message["Subject"]).split("]")[0].strip("[") for m in reminders} == acked_refs
    for m in to_victim:
        text = next(p.get_content() for p in m.message.walk() if p.get_content_type() == "text/plain")
        assert "Cheap Watches" not in text and "watches.example" not in text
        assert "Cheap Watches" not in str(m.message["Subject"]) and "watches.example" not in str(m.message["Subject"])
    cases = json.loads(bot(cfg, "cases", "list", "--json").stdout)
    assert len(cases) == 20
    assert sorted(c["status"] for c in cases).count("needs_staff") == 17
    notices = [m for m in smtp_sink.messages() if m.rcpt_tos == ("dpo@bot.test",)
               and "held back" in str(m.message["Subject"])]
    assert len(notices) == 1  # staff told once, not 17 times
