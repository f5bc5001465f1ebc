"""The staff console's security promises (SPEC section 6), each checked in process against the ASGI app
on a real database: sessions, CSRF, roles, the sign-in wait, cookie flags, escaping, the CSP."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.adapters.store.tables import AccountRow, CaseRow
from tests.botrun import ROOT, bot
from tests.console import PASSWORD, console_config, csrf_of, make_desk, post_form, sign_in, signed_in
from tests.factories import mail_bytes

PAGES = ("/", "/cases", "/cases/{ref}", "/cases/{ref}/export", "/quarantine", "/templates", "/no-such-page",
         "/logout")


@pytest.fixture
def desk(tmp_path: Path):
    d = make_desk(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}")
    yield d
    d.engine.dispose()


def case_row(desk, ref: str) -> CaseRow:
    with Session(desk.engine) as s:
        row = s.exec(select(CaseRow).where(CaseRow.ref == ref)).one()
        s.expunge(row)
        return row


def test_every_page_but_login_and_healthz_needs_a_session(desk) -> None:
    ref = desk.inquiry()
    client = desk.client()
    for page in PAGES:
        answer = client.get(page.format(ref=ref))
        assert answer.status_code == 303, page
        assert answer.headers["location"].startswith("/login"), page
    assert client.get("/login").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert ref not in health.text and "ruth" not in health.text


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(desk) -> None:
    ref = desk.inquiry()
    client = signed_in(desk, "alice", "staff")
    before = case_row(desk, ref)
    for data in ({"reason": "gone"}, {"reason": "gone", "csrf_token": "forged-token-" + "x" * 40}):
        answer = client.post(f"/cases/{ref}/close", data=data)
        assert answer.status_code == 403
        assert "nothing was changed" in answer.text
    after = case_row(desk, ref)
    assert (after.status, after.closed_at, after.updated_at) == (before.status, before.closed_at, before.updated_at)
    # a sign-in needs it too
    fresh = desk.client()
    assert fresh.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 403
    # with the token the same form works
    assert post_form(client, f"/cases/{ref}", f"/cases/{ref}/close", {"reason": "gone"}).status_code == 303
    assert case_row(desk, ref).status == "closed"


def test_a_viewer_sees_no_action_forms_and_a_viewer_post_changes_nothing(desk) -> None:
    ref = desk.inquiry()
    viewer = signed_in(desk, "victor", "viewer")
    page = viewer.get(f"/cases/{ref}")
    assert page.status_code == 200 and ref in page.text
    assert f'action="/cases/{ref}/' not in page.text
    for button in ("Record documents received", "Close case", "Send reply", "Extend", "Set kinds"):
        assert f">{button}</button>" not in page.text
    assert "Export evidence" in page.text  # reading is a viewer's job
    before = case_row(desk, ref)
    answer = viewer.post(f"/cases/{ref}/close", data={"reason": "x", "csrf_token": csrf_of(page.text)})
    assert answer.status_code == 403
    assert case_row(desk, ref).updated_at == before.updated_at and case_row(desk, ref).status == before.status
    staff = signed_in(desk, "sara", "staff")
    assert ">Close case</button>" in staff.get(f"/cases/{ref}").text
    assert staff.get("/quarantine").status_code == 403 and staff.get("/templates").status_code == 403
    admin = signed_in(desk, "ada", "admin")
    assert admin.get("/quarantine").status_code == 200 and admin.get("/templates").status_code == 200


def test_after_five_failed_sign_ins_the_account_waits_fifteen_minutes(desk) -> None:
    desk.account("alice", "staff")
    desk.account("bob", "staff")
    client = desk.client()
    for _ in range(4):  # four failures, then a success, clear the count
        assert sign_in(client, "alice", "wrong password!").status_code == 401
    assert sign_in(client, "alice").status_code == 303
    client.cookies.clear()
    for _ in range(5):
        assert sign_in(client, "alice", "wrong password!").status_code in (401, 429)
    sixth = sign_in(client, "alice")  # the right password, yet it waits
    assert sixth.status_code == 429 and "15 minutes" in sixth.text
    assert sign_in(desk.client(), "bob").status_code == 303  # the wait is per account
    desk.clock.advance(minutes=14)
    assert sign_in(client, "alice").status_code == 429
    desk.clock.advance(minutes=1, seconds=1)
    assert sign_in(client, "alice").status_code == 303
    with Session(desk.engine) as s:
        row = s.exec(select(AccountRow).where(AccountRow.name == "alice")).one()
        assert row.failed_logins == 0 and row.locked_until is None


def _session_cookie(answer) -> str:
    return next(v for k, v in answer.headers.multi_items() if k == "set-cookie")


def test_session_cookie_is_httponly_samesite_and_secure_unless_loopback(tmp_path: Path) -> None:
    for web, secure in (({"host": "127.0.0.1"}, False), ({"host": "0.0.0.0"}, True),
                        ({"host": "127.0.0.1", "public_url": "https://privacy.example.com"}, True)):
        d = make_desk(tmp_path / str(len(web)) / web["host"], f"sqlite:///{tmp_path / (str(len(web)) + web['host'])}.db",
                      web=web)
        d.account("alice", "staff")
        client = d.client(base_url="https://127.0.0.1" if secure else "http://127.0.0.1")
        cookie = _session_cookie(sign_in(client, "alice")).lower()
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert ("; secure" in cookie) is secure, (web, cookie)
        assert cookie.startswith("__host-console=") is secure
        d.engine.dispose()


def test_customer_text_is_always_escaped(desk) -> None:
    hostile_subject = "<script>alert('subject')</script>"
    hostile_name = '<img src=x onerror="alert(1)">'
    ref = desk.take(mail_bytes(sender=f'"{hostile_name}" <evil@example.com>', subject=hostile_subject,
                               body="Please delete my data. <script>alert('body')</script>", message_id="<evil@x>"))
    client = signed_in(desk, "ada", "admin")
    for page in ("/", "/cases", f"/cases/{ref}", "/cases?q=evil@example.com"):
        html = client.get(page).text
        assert "<script" not in html.lower(), page
        assert "<img" not in html.lower() and not re.search(r"<[^>]+\sonerror=", html, re.I), page
    html = client.get(f"/cases/{ref}").text
    assert "&lt;script&gt;alert(" in html and "onerror" in html  # shown, as text


def test_every_answer_carries_a_content_security_policy_without_inline_scripts(desk) -> None:
    ref = desk.inquiry()
    client = signed_in(desk, "ada", "admin")
    for page in ("/login", "/healthz", "/", "/cases", f"/cases/{ref}", "/templates", "/quarantine", "/static/console.css"):
        answer = client.get(page)
        csp = answer.headers.get("content-security-policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp, page
        assert "frame-ancestors 'none'" in csp and answer.headers["x-content-type-options"] == "nosniff", page
        if answer.headers["content-type"].startswith("text/html"):
            assert "<script" not in answer.text and " style=" not in answer.text, page
            assert not re.search(r"\son[a-z]+=", answer.text), page


def _users(config: Path, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config), "users", *args],
                          input=password, text=True, capture_output=True, cwd=ROOT, timeout=60)


def test_passwords_are_stored_as_argon2id_and_sessions_end_with_a_password_change(tmp_path: Path, desk) -> None:
    config = console_config(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}")
    done = _users(config, "add", "carol", "--role", "staff", "--password-stdin", password=PASSWORD + "\n")
    assert done.returncode == 0 and "carol" in done.stdout, done.stderr
    assert _users(config, "add", "carol", "--role", "staff", "--password-stdin", password=PASSWORD + "\n").returncode == 2
    assert _users(config, "add", "dave", "--role", "staff", "--password-stdin", password="short\n").returncode == 2
    with Session(desk.engine) as s:
        row = s.exec(select(AccountRow).where(AccountRow.name == "carol")).one()
        assert row.password_hash.startswith("$argon2id$") and PASSWORD not in row.password_hash
    client = desk.client()
    assert sign_in(client, "carol").status_code == 303
    assert client.get("/").status_code == 200
    changed = _users(config, "password", "carol", "--password-stdin", password="another good password\n")
    assert changed.returncode == 0, changed.stderr
    assert client.get("/").status_code == 303  # the old session ended
    assert _users(config, "disable", "carol").returncode == 0
    assert sign_in(desk.client(), "carol", "another good password").status_code == 401
    listed = _users(config, "list")
    assert listed.returncode == 0 and "carol" in listed.stdout and "disabled" in listed.stdout


def test_web_needs_a_secret_key(tmp_path: Path) -> None:
    config = console_config(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}", web={"secret_key": ""})
    result = bot(config, "web", timeout=60)
    assert result.returncode == 2 and "web.secret_key" in result.stderr and "Traceback" not in result.stderr


def test_the_console_logs_no_addresses_subjects_or_passwords(desk, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    ref = desk.inquiry(sender="Secret Person <secret.person@example.com>", subject="Very private subject")
    desk.account("staff@example.com", "staff")
    client = desk.client()
    sign_in(client, "staff@example.com", "a wrong password!")
    assert sign_in(client, "staff@example.com").status_code == 303
    client.get("/cases?q=secret.person@example.com")
    client.get("/cases/secret.person@example.com")
    client.get(f"/cases/{ref}")
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot.web"))
    assert ref in logged  # a case reference is fine
    for secret in ("@", "Very private", PASSWORD, "a wrong password"):
        assert secret not in logged, secret
