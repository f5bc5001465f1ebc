import json
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from bot.core.errors import ConfigError
from bot.settings import load_settings
from tests.botrun import DELETE, ROOT, edit_config, write_config


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path, imap_port=10143, smtp_port=10025, db_url=f"sqlite:///{tmp_path}/bot.db")


def test_example_config_loads() -> None:
    s = load_settings(ROOT / "config" / "bot.example.toml")
    assert s.mailbox.security == "ssl" and s.mailbox.tls_verify is True
    assert s.policy.response_days == 14 and s.policy.timezone == "Asia/Tokyo"
    # SPEC section 9: no server trusted until the admin names theirs; the three limits on automatic mail
    assert s.mailbox.trusted_authserv_ids == []
    assert (s.policy.max_auto_replies_per_sender_per_day, s.policy.max_auto_replies_per_domain_per_hour,
            s.policy.max_auto_replies_per_hour) == (3, 20, 100)


def test_environment_overrides_file(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_MAILBOX__PASSWORD", "from-env")
    monkeypatch.setenv("BOT_POLICY__RESPONSE_DAYS", "10")
    s = load_settings(cfg)
    assert s.mailbox.password.get_secret_value() == "from-env" and s.policy.response_days == 10


@pytest.mark.parametrize(("environ", "expect"), [
    ({"BOT_STAFF__DIGEST_RECIPIENTS": '["a@example.com", "b@example.com"]'},
     lambda s: s.staff.digest_recipients == ["a@example.com", "b@example.com"]),
    ({"bot_policy__response_days": "9"}, lambda s: s.policy.response_days == 9),  # names are case-insensitive
    ({"BOT_DATABASE__KEEP_BODIES": "false"}, lambda s: s.database.keep_bodies is False),
    ({"BOT_SMTP__PASSWORD": "[not json"}, lambda s: s.smtp.password.get_secret_value() == "[not json"),
    ({"BOT_CONFIG": "elsewhere.toml", "BOT_REQUIRE_SERVERS": "1"}, lambda s: s.policy.response_days == 14),
])
def test_environment_variables_laid_over_the_file(cfg: Path, environ: dict[str, str], expect: Any) -> None:
    assert expect(load_settings(cfg, environ))


def test_an_unknown_key_in_the_environment_is_named(cfg: Path) -> None:
    with pytest.raises(ConfigError, match=r"config key policy\.respons_days is not a known key .*BOT_POLICY__RESPONS_DAYS"):
        load_settings(cfg, {"BOT_POLICY__RESPONS_DAYS": "9"})
    with pytest.raises(ConfigError, match=r"config key policy\.response_days .*BOT_POLICY__RESPONSE_DAYS"):
        load_settings(cfg, {"BOT_POLICY__RESPONSE_DAYS": "soon"})


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"mailbox": {"port": "not a number"}}, "mailbox.port"),
        ({"mailbox": {"security": "tls"}}, "mailbox.security"),
        ({"policy": {"timezone": "Mars/Olympus"}}, "policy.timezone"),
        ({"smtp": {"from_address": DELETE}}, "smtp.from_address"),
        ({"policy": {"bogus_key": 1}}, "policy.bogus_key"),
        ({"mailbox": {"trusted_authserv_ids": ["mx.example.com; dmarc=pass"]}}, "mailbox.trusted_authserv_ids"),
        ({"policy": {"max_auto_replies_per_domain_per_hour": -1}}, "policy.max_auto_replies_per_domain_per_hour"),
        ({"policy": {"max_auto_replies_per_hour": "many"}}, "policy.max_auto_replies_per_hour"),
    ],
)
def test_bad_config_names_the_key(cfg: Path, overrides: dict, key: str) -> None:
    edit_config(cfg, overrides)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(cfg)


def test_cli_bad_config_exits_2_without_traceback(cfg: Path) -> None:
    edit_config(cfg, {"mailbox": {"port": "x"}})
    r = subprocess.run([sys.executable, "run_bot.py", "--config", str(cfg), "cases", "list"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "mailbox.port" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_cli_missing_config_and_bad_usage_exit_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "run_bot.py", "--config", str(tmp_path / "nope.toml"), "cases", "list"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "not found" in r.stderr
    r = subprocess.run([sys.executable, "run_bot.py", "cases", "frobnicate"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_config_show_masks_secrets(cfg: Path) -> None:
    r = subprocess.run([sys.executable, "run_bot.py", "--config", str(cfg), "config", "show"], cwd=ROOT,
                       capture_output=True, text=True, env={"BOT_SMTP__PASSWORD": "hunter2", "PATH": "/usr/bin"})
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert "botpass" not in r.stdout and "hunter2" not in r.stdout
    assert shown["mailbox"]["password"] == "***" and shown["smtp"]["password"] == "***"


def test_staff_commands_from_the_command_line(tmp_path: Path) -> None:
    from datetime import datetime

    from bot.adapters.store.engine import make_engine, transaction
    from bot.adapters.store.tables import CaseRow

    db = f"sqlite:///{tmp_path}/bot.db"
    engine = make_engine(db)
    opened = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    with transaction(engine) as s:
        s.add(CaseRow(ref="PRV-2026-00001", status="needs_staff", kinds="general", requester="a@example.com",
                      opened_at=opened, updated_at=opened))
    engine.dispose()
    cfg = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=db)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "run_bot.py", "--config", str(cfg), "cases", *args], cwd=ROOT,
                              capture_output=True, text=True)

    r = run("set-kinds", "PRV-2026-00001", "--kinds", "deletion,disclosure")
    assert r.returncode == 0 and "disclosure,deletion" in r.stdout and "awaiting_documents" in r.stdout
    assert run("set-kinds", "PRV-2026-00001", "--kinds", "general").returncode == 2  # no longer needs_staff
    r = run("docs-received", "PRV-2026-00001", "--on", "2026-12-04")
    assert r.returncode == 0 and "2026-12-18" in r.stdout
    r = run("extend", "PRV-2026-00001", "--days", "7", "--reason", "ID copy illegible")
    assert r.returncode == 0 and "2026-12-25" in r.stdout
    assert run("responded", "PRV-2026-00001", "--on", "2026-12-20").returncode == 0
    assert run("close", "PRV-2026-00001", "--reason", "answered").returncode == 0
    r = run("docs-received", "PRV-2026-00001")
    assert r.returncode == 2 and "closed" in r.stderr and "Traceback" not in r.stderr
    detail = json.loads(run("show", "PRV-2026-00001", "--json").stdout)
    assert [e["kind"] for e in detail["events"]] == ["kinds_set", "documents_received", "extended", "responded",
                                                      "closed"]
    assert "illegible" in detail["events"][2]["detail"] and detail["due_at"].startswith("2026-12-25T23:59:59+09:00")


def test_purge_erases_personal_data_of_old_closed_cases(tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    from sqlmodel import Session, select

    from bot.adapters.store.engine import make_engine, transaction
    from bot.adapters.store.tables import CaseRow, MessageRow

    db = f"sqlite:///{tmp_path}/bot.db"
    engine = make_engine(db)
    now = datetime.now(UTC)
    with transaction(engine) as s:
        for i, closed_days in enumerate((400, 10, None), 1):
            closed = now - timedelta(days=closed_days) if closed_days else None
            case = CaseRow(ref=f"PRV-2026-0000{i}", status="closed" if closed else "in_progress", kinds="deletion",
                           requester=f"person{i}@example.com", requester_name="Name", subject="My data",
                           opened_at=now - timedelta(days=500), updated_at=now, closed_at=closed)
            s.add(case)
            s.flush()
            s.add(MessageRow(case_id=case.id, direction="in", message_id=f"<m{i}@x>", from_addr=f"person{i}@example.com",
                             subject="My data", recorded_at=now))
    cfg = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=db)
    edit_config(cfg, {"database": {"retention_days": 365}})

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "run_bot.py", "--config", str(cfg), "cases", *args], cwd=ROOT,
                              capture_output=True, text=True)

    r = run("purge", "--dry-run")
    assert r.returncode == 0 and "would erase personal data of 1 closed case(s): PRV-2026-00001" in r.stdout
    with Session(engine) as s:
        assert s.exec(select(CaseRow).where(CaseRow.ref == "PRV-2026-00001")).one().requester == "person1@example.com"
    r = run("purge")
    assert r.returncode == 0 and "erased personal data of 1" in r.stdout
    assert "freed space wiped: SQLite: WAL checkpointed and truncated, VACUUM done" in r.stdout, r.stdout
    with Session(engine) as s:
        rows = {c.ref: c for c in s.exec(select(CaseRow)).all()}
        assert rows["PRV-2026-00001"].requester == "(erased)" and rows["PRV-2026-00001"].kinds == "deletion"
        assert rows["PRV-2026-00002"].requester == "person2@example.com"
        assert [m.from_addr for m in s.exec(select(MessageRow).where(MessageRow.case_id == rows["PRV-2026-00001"].id))] == [""]
    engine.dispose()
    assert "0 closed case(s)" in run("purge").stdout


def test_broken_template_stops_the_start_with_exit_2(tmp_path: Path) -> None:
    import shutil

    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "templates", templates)
    (templates / "ack_rights.en.txt.j2").write_text("Subject: [{{ ref }}] x\n\n{{ no_such_variable }}\n")
    cfg = write_config(tmp_path, imap_port=1, smtp_port=1, db_url=f"sqlite:///{tmp_path}/bot.db")
    edit_config(cfg, {"paths": {"templates": str(templates)}})
    r = subprocess.run([sys.executable, "run_bot.py", "--config", str(cfg), "run", "--once"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "ack_rights.en.txt.j2" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("overrides", "keys"),
    [
        ({"smtp": {"security": "none", "password": "secret", "host": "smtp.example.com"}},
         ("smtp.security", "smtp.password")),
        ({"mailbox": {"security": "none", "password": "secret", "host": "imap.example.com"}},
         ("mailbox.security", "mailbox.password")),
        ({"mailbox": {"tls_verify": False}}, ("mailbox.tls_verify", "mailbox.security")),
        ({"smtp": {"ca_file": "/etc/ssl/extra.pem"}}, ("smtp.ca_file", "smtp.security")),
        ({"policy": {"reminder_days": [14, 70]}}, ("policy.reminder_days", "policy.abandon_days")),
        ({"policy": {"reminder_days": [0]}}, ("policy.reminder_days",)),
        ({"mailbox": {"processed_folder": "INBOX"}}, ("mailbox.processed_folder", "mailbox.folder")),
        ({"staff": {"digest_recipients": ["dpo@example.com", "not an address"]}}, ("staff.digest_recipients",)),
        ({"smtp": {"from_address": "privacy@@bot.test"}}, ("smtp.from_address",)),
    ],
)
def test_contradictory_keys_are_refused_naming_every_key(cfg: Path, overrides: dict, keys: tuple[str, ...]) -> None:
    edit_config(cfg, overrides)
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert all(key in str(caught.value) for key in keys), str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_password_in_clear_text_to_this_machine_is_fine(cfg: Path) -> None:
    edit_config(cfg, {"smtp": {"security": "none", "password": "secret", "host": "127.0.0.1"}})
    assert load_settings(cfg).smtp.password.get_secret_value() == "secret"
