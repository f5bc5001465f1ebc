"""The sorter in the shell: never-reply mail, unsure mail handed to staff with guesses, staff
corrections kept (and purged), the digest's correction rate, and `rules test` on the labelled sets."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bot.adapters.imap import Fetched
from bot.adapters.store.cases import digest_facts
from bot.adapters.store.corrections import training_corrections
from bot.adapters.store.engine import make_engine, transaction
from bot.adapters.store.retention import purge
from bot.adapters.store.tables import CaseRow, CorrectionRow, EventRow, OutboxRow
from bot.app.intake import Intake
from bot.app.mailing import Mailing
from bot.app.sorter import default_set
from bot.compose.templates import Renderer
from bot.core.classify import classify
from bot.core.digest import build_digest
from bot.core.model import Suppress
from bot.core.parse import parse_message
from bot.settings import default_rules_path, load_rules, load_settings, sorter_model
from tests.botrun import ROOT, bot, case_detail, write_config
from tests.factories import mail_bytes
from tests.test_sorter import UNSURE_TEXT, _toy_model

NOW = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
BOX = "bot@127.0.0.1:10143/INBOX"
MAIL = ROOT / "tests" / "data" / "mail"
SETS = ROOT / "tests" / "data" / "sorting"
RULES = load_rules(default_rules_path())
OWN = frozenset({"privacy@bot.test"})


def take(intake: Intake, uid: int, raw: bytes, now: datetime = NOW):
    return intake.take_in(BOX, 1, Fetched(uid, raw, len(raw), False), now)


# --- mail that must never be answered ---------------------------------------------------------------

def _variant(name: str, **headers: str) -> bytes:
    """A never-reply mail with some headers replaced (None-like "" removes one): each defence alone."""
    msg = message_from_bytes((MAIL / name).read_bytes(), policy=policy.compat32)
    for key, value in headers.items():
        key = key.replace("_", "-")
        del msg[key]
        if value:
            msg[key] = value
    return msg.as_bytes()


NEVER = [
    ("virus-gateway", "never_reply_virus_gateway_via_list.eml", {}, "bounce.subject"),
    ("virus-gateway-postmaster-text", "never_reply_virus_gateway_via_list.eml", {"Subject": "Notice"}, "bounce.weak_sender"),
    ("virus-gateway-list-header", "never_reply_virus_gateway_via_list.eml",
     {"Subject": "Notice", "From": "gw@scan-gw2.example.net"}, "bulk.mailing_list"),
    ("arf", "never_reply_abuse_complaint_arf.eml", {}, "bounce.content_type: multipart/report; report-type=feedback-report"),
    ("abuse-plain", "never_reply_abuse_complaint_plain.eml", {}, "bounce.subject"),
    ("abuse-plain-sender-text", "never_reply_abuse_complaint_plain.eml", {"Subject": "Notice"}, "bounce.weak_sender"),
    ("abuse-plain-returned-part", "never_reply_abuse_complaint_plain.eml",
     {"Subject": "Notice", "From": "desk@mail.example.com"}, "bounce.returned_part: a message/rfc822 part"),
    ("post-master", "never_reply_post_master_failure.eml", {}, "bounce.subject"),
    ("post-master-sender-text", "never_reply_post_master_failure.eml", {"Subject": "Notice"}, "bounce.weak_sender"),
    ("post-master-headers-part", "never_reply_post_master_failure.eml",
     {"Subject": "Notice", "From": "nd@example.org", "Return-Path": ""},
     "bounce.returned_part: a text/rfc822-headers part"),
]


@pytest.mark.parametrize(("name", "headers", "evidence"), [r[1:] for r in NEVER], ids=[r[0] for r in NEVER])
def test_never_reply_mail_is_suppressed(name: str, headers: dict[str, str], evidence: str) -> None:
    result = classify(parse_message(_variant(name, **headers)), RULES, own_addresses=OWN)
    assert result.suppress in (Suppress.BOUNCE, Suppress.BULK), result
    assert result.suppress_evidence.startswith(evidence), result.suppress_evidence


def test_a_customer_forwarding_a_mail_is_answered() -> None:
    """A forwarded message (message/rfc822) without report wording is a customer's mail."""
    raw = mail_bytes(sender="ruth@example.com", subject="This mail", body="Please delete my data.")
    msg = message_from_bytes(raw, policy=policy.default)
    msg.make_mixed()
    msg.add_attachment(message_from_bytes(mail_bytes(sender="shop@example.net", subject="Sale", body="Buy!")))
    result = classify(parse_message(msg.as_bytes()), RULES, own_addresses=OWN)
    assert result.suppress is None, result.suppress_evidence


@pytest.fixture
def intake(tmp_path: Path, db_url: str) -> Iterator[Intake]:
    settings = load_settings(write_config(tmp_path, imap_port=10143, smtp_port=10025, db_url=db_url,
                                          overrides={"database": {"keep_bodies": True}}))
    engine = make_engine(db_url)
    yield Intake(Mailing(settings, Renderer(ROOT / "templates")), engine, RULES, sorter_model(settings))
    engine.dispose()


def test_never_reply_mail_gets_no_acknowledgement(intake: Intake) -> None:
    for uid, path in enumerate(sorted(MAIL.glob("never_reply_*.eml")), 1):
        outcome = take(intake, uid, path.read_bytes())
        assert not outcome.replied and outcome.action in ("ignored", "follow_up"), (path.name, outcome)
    with Session(intake.engine) as s:
        assert s.exec(select(OutboxRow)).all() == []


# --- the shipped model in the intake ----------------------------------------------------------------

def test_the_running_bot_uses_the_shipped_model(intake: Intake) -> None:
    """Wording the rule file alone misses: the model sorts it and the form goes out."""
    raw = mail_bytes(sender="ruth@example.com", subject="Calls", message_id="<m1@x>",
                     body="Your people keep phoning me about test drives. Please leave me alone.")
    outcome = take(intake, 1, raw)
    assert outcome.kinds == ("marketing_opt_out",) and outcome.replied, outcome
    assert "sorted by the model (marketing_opt_out" in outcome.reason


# --- unsure mail, staff corrections, purge, digest --------------------------------------------------

def test_unsure_mail_goes_to_staff_and_the_correction_is_kept(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path, imap_port=10143, smtp_port=10025, db_url=db_url,
                          overrides={"database": {"keep_bodies": True, "retention_days": 30}})
    settings = load_settings(config)
    engine = make_engine(db_url)
    unsure = Intake(Mailing(settings, Renderer(ROOT / "templates")), engine, RULES, _toy_model(0.4))
    raw = mail_bytes(sender="ruth@example.com", subject="Data", message_id="<u1@x>",
                     body=UNSURE_TEXT + "\n\n-- \nRuth Adams\nTel 03-1234-5678")
    outcome = take(unsure, 1, raw)
    assert (outcome.action, outcome.kinds, outcome.replied) == ("new_case", ("general",), True)
    with Session(engine) as s:
        [case] = s.exec(select(CaseRow)).all()
        [ack] = s.exec(select(OutboxRow)).all()
        assert case.status == "needs_staff"
        assert b"application/pdf" not in ack.raw  # no request form for an unsure mail
    detail = case_detail(config, outcome.ref)
    assert detail["sorter_guesses"] == [{"kind": "deletion", "confidence": 0.6}]
    assert any(e["kind"] == "sorter_guesses" and e["detail"] == "deletion 0.60" for e in detail["events"])

    result = bot(config, "cases", "set-kinds", outcome.ref, "--kinds", "deletion", "--as", "hanako")
    assert result.returncode == 0, result.stderr
    with Session(engine) as s:
        [row] = s.exec(select(CorrectionRow)).all()
    assert (row.kinds_before, row.kinds_after, row.actor, row.guesses) == ("general", "deletion", "hanako", "deletion 0.60")
    assert row.text == "data could you get rid of everything?"  # own words, normalised: no signature
    assert [(t, sorted(k.value for k in kinds)) for t, kinds in training_corrections(engine)] == [
        (row.text, ["deletion"])]

    facts = digest_facts(engine, as_of=NOW + timedelta(days=1), since=NOW, ack_target_hours=1, limit=50)
    digest = build_digest(facts, as_of=NOW + timedelta(days=1), since=NOW, zone=settings.zone)
    assert (digest.corrected, digest.opened_recently, digest.correction_rate) == (1, 1, "100.0 %")
    later = NOW + timedelta(days=31)
    assert build_digest(digest_facts(engine, as_of=later, since=NOW, ack_target_hours=1, limit=50),
                        as_of=later, since=NOW, zone=settings.zone).correction_rate == "-"
    printed = bot(config, "digest", "--print", "--as-of", "2026-12-02T10:00")
    assert "Sorting corrected by staff (cases opened in the last 30 days): 1 of 1 (100.0 %)" in printed.stdout

    with transaction(engine) as session:  # closed long ago: the purge erases the correction's text
        case = session.exec(select(CaseRow)).one()
        case.status, case.closed_at = "closed", NOW - timedelta(days=60)
        session.add(case)
    assert purge(engine, now=NOW, retention_days=30, dry_run=False).refs == [outcome.ref]
    with Session(engine) as s:
        [row] = s.exec(select(CorrectionRow)).all()
        assert (row.text, row.actor, row.kinds_after) == (None, "", "deletion")
        assert any(e.kind == "purged" for e in s.exec(select(EventRow)).all())
    assert training_corrections(engine) == []
    engine.dispose()


def test_without_kept_bodies_a_correction_keeps_no_text(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'bot.db'}"
    config = write_config(tmp_path, imap_port=10143, smtp_port=10025, db_url=db_url)
    settings = load_settings(config)
    engine = make_engine(db_url)
    intake = Intake(Mailing(settings, Renderer(ROOT / "templates")), engine, RULES, _toy_model(0.4))
    outcome = take(intake, 1, mail_bytes(sender="ruth@example.com", subject="Data", message_id="<u2@x>",
                                         body=UNSURE_TEXT))
    assert bot(config, "cases", "set-kinds", outcome.ref, "--kinds", "deletion").returncode == 0
    with Session(engine) as s:
        [row] = s.exec(select(CorrectionRow)).all()
    assert (row.kinds_after, row.text) == ("deletion", None)
    engine.dispose()


# --- rules test and sorter train on the labelled sets ------------------------------------------------

def _rules_test(*args: str) -> dict[str, Any]:
    """`rules test --json` without a config file: the shipped rules and model."""
    result = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "rules", "test", "--json", *args],
                            cwd=ROOT, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_rules_test_on_the_development_set(tmp_path: Path) -> None:
    """The shipped model was trained on this set: a guard that rules + model are in use (the rule file
    alone sorts under half of it right). On a slice of it, every fifth mail (the whole set takes a minute);
    without --set, `rules test` reads the whole set."""
    lines = [line for line in (SETS / "dev.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    part = tmp_path / "dev-part.jsonl"
    part.write_text("\n".join(lines[::5]) + "\n", encoding="utf-8")
    with_model, rules_only = _rules_test("--set", str(part)), _rules_test("--set", str(part), "--rules-only")
    assert with_model["mails"] == len(lines[::5]) and with_model["model"]
    assert with_model["worst"] >= 0.75 and with_model["form_error_rate"] <= 0.09, with_model
    assert rules_only["model"] is None and rules_only["worst"] < 0.5
    assert set(with_model["confusion"]) == {"disclosure", "amendment", "addition", "deletion",
                                            "third_party_stop", "marketing_opt_out", "general"}
    assert default_set(None) == SETS / "dev.jsonl"


# The held-out test parts: 320 mails each, by writers who saw only tests/data/sorting/GUIDE.md and the policy,
# written before the sorter they measure. test.jsonl was measured once with the model of 14,957 mails; then
# test2.jsonl was written, and measured once with the same model (94.1 % / 94.4 % exactly right). The model
# shipped since keeps only character n-grams found in 5 mails or more (chosen on a development holdout: the
# same accuracy with 40 % fewer features, 52 MB of memory instead of 87 MB); with it: test.jsonl 300 exactly
# right (93.8 %), lowest precision/recall 0.900 (deletion precision), form errors 3.4 %; test2.jsonl 301
# (94.1 %), 0.914 (disclosure precision), 1.9 %. The test part of earlier sessions (its results seen while
# building) joined the development set. The floors keep later changes from making them worse; a change is
# judged on the development set (`sorter cv`), never tuned on these.
TEST_FLOORS = {
    "test.jsonl": {"worst": 0.90, "form_error_rate": 0.035, "exact": 300},
    "test2.jsonl": {"worst": 0.91, "form_error_rate": 0.019, "exact": 301},
}


@pytest.fixture(scope="module", params=sorted(TEST_FLOORS))
def test_set_figures(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    figures = _rules_test("--set", str(SETS / request.param))
    assert figures["mails"] == 320
    return request.param, figures


def test_rules_test_on_the_held_out_test_sets_does_not_regress(test_set_figures: tuple[str, dict[str, Any]]) -> None:
    name, f = test_set_figures
    floor = TEST_FLOORS[name]
    assert f["worst"] >= floor["worst"], f
    assert f["form_error_rate"] <= floor["form_error_rate"], f
    assert f["exact"] >= floor["exact"], f


@pytest.mark.xfail(reason="issue 11 Done-when not reached: lowest precision/recall 0.900 and 0.914, form errors "
                          "3.4 % and 1.9 % on the two test parts (see the issue 11 note)", strict=True)
def test_rules_test_on_the_held_out_test_sets_meets_the_done_when(test_set_figures: tuple[str, dict[str, Any]]) -> None:
    """Issue 11's Done-when on each held-out test part: every kind's precision and recall >= 0.95 and
    form errors <= 2 %."""
    _, f = test_set_figures
    low = {k: v for k, v in f["kinds"].items() if min(v["precision"], v["recall"]) < 0.95}
    assert not low and f["form_error_rate"] <= 0.02, (low, f["form_error_rate"])


def test_rules_test_names_a_bad_set(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "kinds": ["gossip"], "text": "x"}\n', encoding="utf-8")
    result = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "rules", "test", "--set", str(bad)],
                            cwd=ROOT, text=True, capture_output=True, timeout=60)
    assert result.returncode == 2 and "bad.jsonl line 1: unknown kind(s) gossip" in result.stderr
    assert "Traceback" not in result.stderr
