"""`demo`: the whole bot on this machine with no outside service.

An embedded IMAP server (pymap) and SMTP server (aiosmtpd) on loopback, an SQLite file, a dozen
sample inquiries; it prints what arrived, how it was sorted and what was sent, then keeps
running so a person can send their own mail to the privacy address. The staff console runs too,
with a demo account printed at the start.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import threading
import time
from pathlib import Path
from types import FrameType

from rich.console import Console
from rich.text import Text
from sqlmodel import Session, col, select

from bot.adapters.store.tables import CaseRow, MessageRow, OutboxRow
from bot.app.service import Bot
from bot.core.errors import UsageError
from bot.demo.sample_mail import PRIVACY_ADDRESS, samples
from bot.demo.servers import DemoServers
from bot.settings import Settings
from bot.staff import accounts
from bot.web.server import Background

DEMO_USER = "demo"
MARKER = ".privacy-mailbox-bot-demo"  # written into the folder the demo made; only such a folder is emptied


def prepare_dir(directory: Path) -> None:
    """An empty folder for the demo: a new one, an empty one, or one an earlier demo made (it has MARKER
    in it, and is emptied). Any other folder is refused (UsageError: exit 2) and left as it is."""
    if directory.is_symlink() or (directory.exists() and not directory.is_dir()):
        raise UsageError(f"--dir {directory} is not a folder the demo made: refusing to use it")
    if directory.is_dir() and any(directory.iterdir()):
        if not (directory / MARKER).is_file():
            raise UsageError(f"--dir {directory} is not empty and was not made by the demo (no {MARKER} in it): "
                             "refusing to empty it; give a new or an empty folder")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MARKER).write_text("made by `demo`; the next demo with this --dir empties this folder\n")


def demo_settings(servers: DemoServers, directory: Path, web_port: int = 8080) -> Settings:
    return Settings.model_validate(dict(
        mailbox={"host": "127.0.0.1", "port": servers.imap_port, "security": "none", "username": servers.user,
                 "password": servers.password, "first_start": "all", "idle_renew_seconds": 300},
        smtp={"host": "127.0.0.1", "port": servers.smtp_port, "security": "none",
              "from_address": PRIVACY_ADDRESS, "from_name": "Privacy Office (demo)", "retry_base_seconds": 2},
        database={"url": f"sqlite:///{directory / 'demo.db'}"},
        staff={"digest_recipients": ["dpo@demo.test"]},
        policy={"postal_address": "Privacy Office, Example K.K., 1-1 Marunouchi, Chiyoda-ku, Tokyo 100-0005",
                "company_name": "Example K.K."},
        web={"host": "127.0.0.1", "port": web_port or 8080, "secret_key": secrets.token_urlsafe(32), "language": "ja"},
    ))


class Demo:
    """The demo's parts, started together: servers with the samples waiting, the bot on a thread, the
    console on another with an admin account `demo` (random password). For `demo` and scripts/screenshots.py."""

    def __init__(self, directory: Path, *, web_port: int = 8080) -> None:
        self.directory = directory
        self.web_port = web_port
        self.servers = DemoServers(privacy_address=PRIVACY_ADDRESS)
        self.password = secrets.token_urlsafe(12)
        self.raws = [s.raw for s in samples()]
        self.bot: Bot | None = None
        self.console: Background | None = None
        self.worker: threading.Thread | None = None

    def start(self) -> None:
        prepare_dir(self.directory)
        self.servers.start()
        for raw in self.raws:
            self.servers.append(raw)
        self.settings = demo_settings(self.servers, self.directory, self.web_port)
        self.bot = Bot(self.settings)
        accounts.add(self.bot.engine, DEMO_USER, "admin", self.password, now=self.bot.clock())
        self.worker = threading.Thread(target=self.bot.run, name="bot", daemon=True)
        self.worker.start()
        try:
            self.console = Background(self.settings, self.bot.engine, port=self.web_port)
            self.console.start()
        except RuntimeError:  # the port is taken: any free one
            self.console = Background(self.settings, self.bot.engine, port=0)
            self.console.start()

    @property
    def url(self) -> str:
        assert self.console is not None
        return self.console.url

    def stop(self) -> None:
        if self.console is not None:
            self.console.stop()
        if self.bot is not None:
            self.bot.stop()
            if self.worker is not None:
                self.worker.join(timeout=10)
            self.bot.close()
        self.servers.stop()


def run_demo(directory: Path, *, exit_after: float = 0.0, web_port: int = 8080) -> int:
    console = Console(soft_wrap=True)
    demo = Demo(directory, web_port=web_port)
    try:
        demo.start()
        assert demo.bot is not None
        raws = demo.raws
        console.rule("[bold]Privacy mailbox bot: demo")
        console.print(f"IMAP 127.0.0.1:{demo.servers.imap_port}  SMTP 127.0.0.1:{demo.servers.smtp_port}  "
                      f"database {directory / 'demo.db'}", markup=False)
        console.print(f"Staff console: [bold]{demo.url}/[/]  sign in as [bold]{DEMO_USER}[/] with password "
                      f"[bold]{demo.password}[/] (admin; ?lang=en for English)", highlight=False)
        console.print(f"{len(raws)} sample inquiries placed in the mailbox of {PRIVACY_ADDRESS}\n")
        stop = threading.Event()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        shown = _Reporter(console, demo.bot)
        deadline = time.monotonic() + 60
        while shown.count < len(raws) and time.monotonic() < deadline and not stop.is_set():
            shown.show_new()
            time.sleep(0.2)
        time.sleep(1.0)
        shown.show_new()
        console.rule()
        port = demo.servers.smtp_port
        console.print(
            f"Now send your own mail to [bold]{PRIVACY_ADDRESS}[/] through SMTP 127.0.0.1:{port}, e.g.\n"
            f"  python3 -c \"import smtplib; from email.message import EmailMessage as M; m=M(); "
            f"m['From']='you@example.com'; m['To']='{PRIVACY_ADDRESS}'; m['Subject']='個人情報の開示'; "
            f"m.set_content('私の個人情報を開示してください。'); "
            f"smtplib.SMTP('127.0.0.1', {port}).send_message(m)\"\n"
            f"The staff console: {demo.url}/ (user {DEMO_USER}, password {demo.password}).\n"
            "Ctrl-C stops the demo.", markup=True, highlight=False)
        started = time.monotonic()
        while not stop.is_set() and (exit_after <= 0 or time.monotonic() - started < exit_after):
            shown.show_new()
            time.sleep(0.3)
        shown.show_new()
        return 0
    finally:
        demo.stop()


class _Reporter:
    """Prints each inbound mail once it is taken in, with its case and the reply sent."""

    def __init__(self, console: Console, bot: Bot) -> None:
        self.console = console
        self.bot = bot
        self.last_id = 0
        self.count = 0

    def show_new(self) -> None:
        with Session(self.bot.engine) as session:
            inbound = session.exec(select(MessageRow).where(MessageRow.direction == "in", col(MessageRow.id) > self.last_id)
                                   .order_by(col(MessageRow.id))).all()
            for msg in inbound:
                case = session.get(CaseRow, msg.case_id) if msg.case_id else None
                if msg.action == "new_case" and case is not None:
                    sent = session.exec(select(OutboxRow).where(OutboxRow.case_id == case.id)).first()
                    if msg.reason.startswith("reply cap") is False and (sent is None or sent.status != "sent"):
                        return  # wait until its reply has gone out, to show the whole story at once
                self._print(session, msg, case)
                assert msg.id is not None
                self.last_id = msg.id
                self.count += 1

    def _print(self, session: Session, msg: MessageRow, case: CaseRow | None) -> None:
        """What came from a mail (addresses, subject, reasons quoting headers) is printed as plain text,
        never as rich markup: `[/]` in a header would otherwise end a style that is not open, and raise."""
        line = self._line
        line(("arrived", "bold cyan"), f"  uid {msg.mailbox_uid}  from {msg.from_addr or '?'}  subject {msg.subject!r}")
        if case is None:
            line("  ", (msg.action, "yellow"), f": {msg.reason}")
            return
        line("  ", (msg.action, "green"), f" {case.ref}  kinds {case.kinds}  language {case.language}  "
             f"status {case.status}")
        for out in session.exec(select(MessageRow).where(MessageRow.case_id == case.id, MessageRow.direction == "out",
                                                         MessageRow.in_reply_to == msg.message_id)).all():
            row = session.exec(select(OutboxRow).where(OutboxRow.message_id == out.message_id)).first()
            state = row.status if row else "?"
            form = "  + request form PDF" if "with form" in _events_text(session, case) else ""
            line("  ", (f"reply {state}", "magenta"), f" to {out.to_addr}: {out.subject}{form}")
        if msg.action == "new_case" and not msg.reason.startswith("sorted") and "handed" not in msg.reason:
            line(f"  note: {msg.reason}")

    def _line(self, *parts: str | tuple[str, str]) -> None:
        self.console.print(Text.assemble(*parts), highlight=False)


def _events_text(session: Session, case: CaseRow) -> str:
    from bot.adapters.store.tables import EventRow

    return " ".join(e.detail for e in session.exec(select(EventRow).where(EventRow.case_id == case.id)).all())
