"""Helpers for the staff console's tests: a config and store for the app, cases taken in through the real
intake, accounts, and a signed-in client (Starlette's TestClient, in process)."""

from __future__ import annotations

import email
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from starlette.testclient import TestClient

from bot.adapters.imap import Fetched
from bot.adapters.originals import Wanted
from bot.adapters.store.engine import make_engine
from bot.app.intake import Intake
from bot.app.mailing import Mailing
from bot.compose.templates import Renderer
from bot.settings import Settings, load_rules, load_settings
from bot.staff import accounts
from bot.web.app import create_app
from tests.botrun import ROOT, write_config
from tests.factories import mail_bytes

SECRET = "test-console-secret-key-0123456789abcdef"
PASSWORD = "correct horse battery"
BOX = "bot@127.0.0.1:10143/INBOX"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def console_config(tmp_path: Path, db_url: str, *, imap_port: int = 10143, smtp_port: int = 10025,
                   web: dict[str, Any] | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    extra = {**(overrides or {}), "web": {"secret_key": SECRET, "language": "en", **(web or {})}}
    return write_config(tmp_path, imap_port=imap_port, smtp_port=smtp_port, db_url=db_url, overrides=extra)


@dataclass
class Desk:
    """A console on a store, with the intake that fills the store."""

    settings: Settings
    engine: Engine
    clock: Clock
    originals: dict[str, bytes] = field(default_factory=dict)  # what the in-memory "mailbox" holds
    uid: int = 0

    def intake(self) -> Intake:
        return Intake(Mailing(self.settings, Renderer(ROOT / "templates")), self.engine,
                      load_rules(ROOT / "config" / "rules.toml"))

    def take(self, raw: bytes, when: datetime | None = None) -> str:
        """Take one mail in (as `run` would); returns the case reference."""
        self.uid += 1
        outcome = self.intake().take_in(BOX, 1, Fetched(self.uid, raw, len(raw), False), when or self.clock.now)
        mid = str(email.message_from_bytes(raw).get("Message-ID", "")).strip()
        self.originals[mid] = raw
        return outcome.ref

    def inquiry(self, *, subject: str = "My data", sender: str = "Ruth Adams <ruth@example.com>",
                body: str = "Please send me a copy of all personal information you hold about me.",
                message_id: str | None = None, when: datetime | None = None) -> str:
        mid = message_id or f"<inq-{self.uid + 1}@customer.test>"
        return self.take(mail_bytes(sender=sender, subject=subject, body=body, message_id=mid,
                                    date=when or self.clock.now), when)

    def fetch(self, wanted: Sequence[Wanted]) -> dict[str, bytes]:
        return {w.message_id: self.originals[w.message_id] for w in wanted if w.message_id in self.originals}

    def account(self, name: str, role: str, password: str = PASSWORD) -> None:
        accounts.add(self.engine, name, role, password, now=self.clock.now)

    def client(self, fetch: Callable[[Sequence[Wanted]], dict[str, bytes]] | None = None,
               base_url: str = "http://127.0.0.1") -> TestClient:
        app = create_app(self.settings, self.engine, fetch=fetch or self.fetch, clock=self.clock)
        return TestClient(app, base_url=base_url, follow_redirects=False)


def make_desk(tmp_path: Path, db_url: str, **kw: Any) -> Desk:
    settings = load_settings(console_config(tmp_path, db_url, **kw))
    return Desk(settings, make_engine(db_url), Clock())


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def signed_in(desk: Desk, name: str, role: str, **kw: Any) -> TestClient:
    desk.account(name, role)
    client = desk.client(**kw)
    answer = sign_in(client, name)
    assert answer.status_code == 303, answer.text[:500]
    return client


def post_form(client: TestClient, page: str, action: str, data: dict[str, Any]) -> Any:
    """Submit a form of `page` (its CSRF token taken from the page, as a browser would)."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={**data, "csrf_token": token})
