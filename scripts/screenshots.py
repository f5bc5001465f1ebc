"""README screenshots of the staff console, taken from the demo so they stay true.

    .venv/bin/python scripts/screenshots.py            # docs/console-queue.png, docs/console-case.png
    .venv/bin/python scripts/screenshots.py --lang ja  # the Japanese UI (the console's default)

Starts the demo in process (embedded IMAP/SMTP, the samples, the bot, the console), records one
case's documents as received, lets one customer answer their acknowledgement (so the queue shows a
customer waiting), then has Debian's Chromium (through Playwright) sign in and photograph the queue
and that customer's case.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.adapters.store.tables import CaseRow, MessageRow, OutboxRow  # noqa: E402
from bot.demo import DEMO_USER, Demo  # noqa: E402
from bot.staff import actions  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def wait(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshots: timed out waiting for {what}")
        time.sleep(0.2)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lang", choices=["en", "ja"], default="en")
    p.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNG files")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="console-shots-") as tmp:
        demo = Demo(Path(tmp) / "demo", web_port=0)
        demo.start()
        try:
            assert demo.bot is not None
            engine = demo.bot.engine

            def inbound() -> int:
                with Session(engine) as s:
                    return len(s.exec(select(MessageRow.id).where(MessageRow.direction == "in")).all())

            def unsent() -> int:
                with Session(engine) as s:
                    return len(s.exec(select(OutboxRow.id).where(OutboxRow.status != "sent")).all())

            wait("the samples to be answered", lambda: inbound() >= len(demo.raws) and unsent() == 0)
            with Session(engine) as s:
                cases = s.exec(select(CaseRow).order_by(col(CaseRow.id))).all()
            rights = [c for c in cases if c.status == "awaiting_documents"]
            now = datetime.now(UTC)
            actions.documents_received(engine, rights[0].ref, now, now=now, policy=demo.settings.case_policy,
                                       actor=DEMO_USER)
            answering = rights[1]
            answer = EmailMessage()
            answer["From"], answer["To"] = answering.requester, demo.settings.smtp.from_address
            answer["Subject"] = f"Re: [{answering.ref}] {answering.subject}"
            answer["Date"], answer["Message-ID"] = format_datetime(now), "<answer-1@customer.example>"
            answer.set_content("Thank you. Please post the paper form to: 1-2-3 Marunouchi, Chiyoda-ku, Tokyo.\n")
            demo.servers.append(answer.as_bytes())
            wait("the customer's answer to be taken in", lambda: inbound() > len(demo.raws))

            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=args.chromium, args=ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="ja-JP",
                                        timezone_id="Asia/Tokyo", device_scale_factor=1)
                page.goto(f"{demo.url}/login?lang={args.lang}")
                page.locator("#username").fill(DEMO_USER)
                page.locator("#password").fill(demo.password)
                page.locator("section.login button").click()
                page.wait_for_url(f"{demo.url}/")
                shots = {"console-queue.png": "/", "console-case.png": f"/cases/{answering.ref}"}
                for name, path in shots.items():
                    page.goto(f"{demo.url}{path}")
                    height = min(page.evaluate("document.documentElement.scrollHeight"), 2200)
                    page.screenshot(path=str(out / name), full_page=True,
                                    clip={"x": 0, "y": 0, "width": 1280, "height": height})
                    print(out / name)
                browser.close()
        finally:
            demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
