"""The staff console in a real browser: Debian's Chromium driven by Playwright, against a real `web`
process, Dovecot and an SMTP sink. Sign in, the queue, documents received (the due date shown), extend,
set kinds, reply (threaded, at the sink), close, the evidence pack (its SHA-256 list checks out), and a
customer's answer that waits in the queue and the digest until staff act."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.settings import load_settings
from bot.staff.evidence import verify_manifest
from tests.botrun import ROOT, bot
from tests.conftest import unavailable
from tests.console import PASSWORD, console_config
from tests.factories import mail_bytes
from tests.mailservers import free_ports

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not CHROMIUM.exists():
        unavailable("Debian's chromium is not installed: run scripts/install_test_servers.sh")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"playwright is not installed: {exc}")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Console:
    """The bot (one pass at a time) and a real `web` process on one database."""

    def __init__(self, tmp_path: Path, mailbox, smtp_sink) -> None:
        self.port = free_ports(1)[0]
        self.config = console_config(tmp_path, f"sqlite:///{tmp_path / 'bot.db'}", imap_port=mailbox.port,
                                     smtp_port=smtp_sink.port, web={"port": self.port, "language": "ja"})
        self.settings = load_settings(self.config)
        self.url = f"http://127.0.0.1:{self.port}"
        self.mailbox, self.sink = mailbox, smtp_sink
        added = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", str(self.config), "users", "add",
                                "alice", "--role", "staff", "--password-stdin"], input=PASSWORD + "\n", text=True,
                               capture_output=True, cwd=ROOT, timeout=60)
        assert added.returncode == 0, added.stderr
        self.log = (tmp_path / "web.log").open("w")
        self.process = subprocess.Popen([sys.executable, str(ROOT / "run_bot.py"), "--config", str(self.config), "web"],
                                        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "web exited"
            try:
                if urllib.request.urlopen(f"{self.url}/healthz", timeout=2).status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("web did not answer /healthz")

    def run_once(self) -> None:
        """`run --once` as a process (Playwright's sync API holds an event loop in this thread)."""
        result = bot(self.config, "run", "--once")
        assert result.returncode == 0, result.stderr[-2000:]

    def inquiry(self, mid: str, sender: str, subject: str, body: str, **kw: Any) -> str:
        """A customer mail into the mailbox, one pass of the bot; the case reference it got."""
        before = len(self.sink.messages())
        self.mailbox.append([mail_bytes(sender=sender, subject=subject, message_id=mid, body=body,
                                        date=datetime.now(UTC), **kw)])
        self.run_once()
        ack = self.sink.wait_for(before + 1)[before].message
        return re.search(r"\[(PRV-\d{4}-\d{5})\]", str(ack["Subject"])).group(1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def console(tmp_path: Path, mailbox, smtp_sink) -> Iterator[Console]:
    c = Console(tmp_path, mailbox, smtp_sink)
    yield c
    c.stop()


@pytest.fixture
def page(chromium, console: Console) -> Iterator[Any]:
    context = chromium.new_context(accept_downloads=True, locale="ja-JP", timezone_id="Asia/Tokyo")
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, console: Console) -> None:
    page.goto(f"{console.url}/?lang=en")
    assert "/login" in page.url
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Queue", exact=True).wait_for()


def form(page, name: str):
    return page.get_by_role("form", name=name, exact=True)


def section(page, heading_id: str):
    return page.locator(f"section[aria-labelledby={heading_id}]")


def test_the_staff_routine_in_chromium(page, console: Console) -> None:
    from playwright.sync_api import expect

    ref = console.inquiry("<inq-b1@customer.test>", "Ruth Adams <ruth@example.com>", "My data",
                          "Please send me a copy of all personal information you hold about me.")
    general = console.inquiry("<inq-b2@customer.test>", "Sam Lee <sam@example.com>", "Hello",
                              "Hello, I bought a car from your dealer last year and it is great.")
    sign_in(page, console)
    expect(section(page, "q-awaiting").get_by_role("link", name=ref)).to_be_visible()
    expect(section(page, "q-staff").get_by_role("link", name=general)).to_be_visible()

    section(page, "q-awaiting").get_by_role("link", name=ref).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(ref)
    expect(page.get_by_text("Please send me a copy of all personal information")).to_be_visible()
    today = datetime.now(UTC).astimezone(console.settings.zone).date()
    form(page, "Record documents received").get_by_label("Date received").fill(today.isoformat())
    page.get_by_role("button", name="Record documents received").click()
    expect(page.get_by_text(f"Due: {(today + timedelta(days=14)).isoformat()}")).to_be_visible()

    extend = form(page, "Extend")
    extend.get_by_label("Days").fill("7")
    extend.get_by_label("Reason").fill("the ID copy is hard to read")
    extend.get_by_role("button", name="Extend").click()
    expect(page.get_by_text(f"Due: {(today + timedelta(days=21)).isoformat()}")).to_be_visible()

    form(page, "Send reply").get_by_label("Message", exact=True).fill("We received your documents; the answer follows by post.")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_role("status")).to_be_visible()
    reply = console.sink.wait_for(3, timeout=15)[2].message
    assert reply["To"] == "ruth@example.com" and f"[{ref}]" in reply["Subject"]
    assert reply["In-Reply-To"] == "<inq-b1@customer.test>" and "<inq-b1@customer.test>" in reply["References"]
    assert "the answer follows by post" in reply.get_body(("plain",)).get_content()

    close = form(page, "Close case")
    close.get_by_label("Reason").fill("answered in writing")
    close.get_by_role("button", name="Close case").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Closed")
    expect(page.get_by_role("cell", name="alice").first).to_be_visible()  # the history names who acted

    with page.expect_download() as download:
        page.get_by_role("link", name="Export evidence").click()
    pack = Path(download.value.path()).read_bytes()
    assert verify_manifest(pack) == []

    page.goto(f"{console.url}/cases/{general}")
    kinds = form(page, "Set kinds")
    kinds.get_by_label("general").uncheck()
    kinds.get_by_label("disclosure").check()
    kinds.get_by_role("button", name="Set kinds").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Awaiting documents")

    page.goto(f"{console.url}/?lang=ja")  # the Japanese UI of the same page
    expect(page.get_by_role("heading", name="対応キュー")).to_be_visible()


def test_a_customers_answer_shows_in_the_queue_and_the_digest_until_staff_act(page, console: Console) -> None:
    from playwright.sync_api import expect

    ref = console.inquiry("<inq-w1@customer.test>", "Ken Ito <ken@example.jp>", "Paper form",
                          "Please send me a copy of my personal data.")
    ack_id = console.sink.messages()[0].message["Message-ID"]
    sign_in(page, console)
    expect(section(page, "q-waiting").get_by_role("link", name=ref)).to_have_count(0)

    console.mailbox.append([mail_bytes(sender="ken@example.jp", subject=f"Re: [{ref}] Paper form",
                                       message_id="<ans-w1@customer.test>", headers={"In-Reply-To": ack_id},
                                       body="My name is Ken Ito, 1-2-3 Marunouchi, Tokyo. Please post the form.",
                                       date=datetime.now(UTC))])
    console.run_once()
    page.reload()
    waiting = section(page, "q-waiting")
    expect(waiting.get_by_role("link", name=ref)).to_be_visible()
    assert ref in _digest_waiting(console)

    waiting.get_by_role("link", name=ref).click()
    expect(page.get_by_text("1-2-3 Marunouchi")).to_be_visible()
    page.get_by_role("button", name="Mark handled").click()
    expect(page.get_by_role("status")).to_be_visible()
    page.goto(f"{console.url}/")
    expect(section(page, "q-waiting").get_by_role("link", name=ref)).to_have_count(0)
    assert ref not in _digest_waiting(console)


def _digest_waiting(console: Console) -> str:
    result = bot(console.config, "digest", "--print")
    assert result.returncode == 0, result.stderr
    return result.stdout.split("CUSTOMERS WAITING FOR US")[1].split("NEW SINCE")[0]
