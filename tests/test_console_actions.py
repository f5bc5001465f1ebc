"""The staff routine through the console and the command line, against real Dovecot and SMTP: documents,
identity, extend, reply (threaded, [REF], from the privacy address), outcome, close, the evidence pack,
and a customer's answer that waits in the queue and the digest until staff act."""

from __future__ import annotations

import io
import json
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from bot.adapters.store.engine import make_engine
from bot.app.service import Bot
from bot.settings import load_settings
from bot.staff.evidence import verify_manifest
from bot.web.app import create_app
from tests.botrun import bot, case_detail
from tests.console import Clock, console_config, post_form, sign_in
from tests.factories import mail_bytes

pytestmark = pytest.mark.integration


class Office:
    """The bot and the console on one database, the mail servers real."""

    def __init__(self, tmp_path: Path, mailbox, smtp_sink, db_url: str) -> None:
        self.config = console_config(tmp_path, db_url, imap_port=mailbox.port, smtp_port=smtp_sink.port)
        self.settings = load_settings(self.config)
        self.engine = make_engine(db_url)
        self.mailbox, self.sink = mailbox, smtp_sink
        self.clock = Clock()

    def run_once(self) -> None:
        b = Bot(self.settings, engine=self.engine, clock=self.clock)
        try:
            b.run_once()
        finally:
            b.close()

    def client(self, name: str = "alice", role: str = "staff"):
        from starlette.testclient import TestClient

        from bot.staff import accounts

        accounts.add(self.engine, name, role, "correct horse battery", now=self.clock.now)
        client = TestClient(create_app(self.settings, self.engine, clock=self.clock), base_url="http://127.0.0.1",
                            follow_redirects=False)
        assert sign_in(client, name).status_code == 303
        return client


@pytest.fixture
def office(tmp_path: Path, mailbox, smtp_sink, db_url):
    o = Office(tmp_path, mailbox, smtp_sink, db_url)
    yield o
    o.engine.dispose()


def act(client, ref: str, action: str, **data):
    answer = post_form(client, f"/cases/{ref}", f"/cases/{ref}/{action}", data)
    assert answer.status_code == 303, answer.text[:300]
    page = client.get(f"/cases/{ref}")
    assert page.status_code == 200
    return page.text


def flash_errors(html: str) -> list[str]:
    return re.findall(r'<p class="flash error" role="alert">([^<]*)</p>', html)


def test_the_staff_routine_in_the_console(office: Office) -> None:
    raw = mail_bytes(sender="Ruth Adams <ruth@example.com>", subject="My data", message_id="<inq-1@customer.test>",
                     body="Please send me a copy of all personal information you hold about me.",
                     date=office.clock.now)
    office.mailbox.append([raw])
    office.run_once()
    ack = office.sink.wait_for(1)[0].message
    ref = re.search(r"\[(PRV-\d{4}-\d{5})\]", str(ack["Subject"])).group(1)
    client = office.client()

    queue = client.get("/").text
    awaiting = queue.split('id="q-awaiting"')[1].split("</section>")[0]
    assert f'href="/cases/{ref}"' in awaiting
    page = client.get(f"/cases/{ref}").text
    assert "Please send me a copy of all personal information" in page  # read back from the mailbox by UID
    assert "ack_rights.en@" in page and f"/cases/{ref}/messages/" in page
    pdf_link = re.search(rf'href="(/cases/{ref}/messages/\d+/attachments/0)">([^<]+\.pdf)</a>', page)
    assert pdf_link, "the request form is not offered for download"
    pdf = client.get(pdf_link.group(1))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF") and pdf.headers["content-type"] == "application/pdf"
    eml = client.get(re.search(rf'href="(/cases/{ref}/messages/\d+\.eml)"', page).group(1))
    assert eml.status_code == 200 and b"Please send me a copy of all personal information" in eml.content

    zone = office.settings.zone
    today = office.clock.now.astimezone(zone).date()
    tomorrow, before = today + timedelta(days=1), today - timedelta(days=3)
    assert "in the future" in " ".join(flash_errors(act(client, ref, "docs-received", on=tomorrow.isoformat())))
    assert "before the case was opened" in " ".join(flash_errors(act(client, ref, "docs-received", on=before.isoformat())))
    page = act(client, ref, "docs-received", on=today.isoformat())
    assert f"Due: {(today + timedelta(days=14)).isoformat()}" in page
    page = act(client, ref, "identity", document="Passport")
    assert "verified" in page and "Passport" in page
    page = act(client, ref, "extend", days="7", reason="ID copy hard to read")
    assert f"Due: {(today + timedelta(days=21)).isoformat()}" in page

    page = act(client, ref, "reply", message="We received your documents.\nThe answer follows by post.")
    sent = office.sink.wait_for(2)[1].message
    assert sent["To"] == "ruth@example.com" and "privacy@bot.test" in sent["From"]
    assert f"[{ref}]" in sent["Subject"] and sent["In-Reply-To"] == "<inq-1@customer.test>"
    assert "<inq-1@customer.test>" in sent["References"]
    assert "The answer follows by post." in sent.get_body(("plain",)).get_content()
    assert "staff_reply.en@" in page and "The answer follows by post." in page

    assert "needs the reason" in " ".join(flash_errors(act(client, ref, "outcome", outcome="refused", reason="")))
    act(client, ref, "outcome", outcome="partly_done", reason="Some records are kept by the dealer, not us.")
    act(client, ref, "responded", on=today.isoformat())
    page = act(client, ref, "close", reason="answered in writing")
    assert ">Close case</button>" not in page

    pack = client.get(f"/cases/{ref}/export")
    assert pack.status_code == 200 and pack.headers["content-type"] == "application/zip"
    assert verify_manifest(pack.content) == []
    with zipfile.ZipFile(io.BytesIO(pack.content)) as zf:
        names = zf.namelist()
        assert names[:1] == ["case.json"] and "MANIFEST.txt" in names
        assert zf.read("messages/01-in.eml") == raw.replace(b"\n", b"\r\n").replace(b"\r\r\n", b"\r\n")
        assert zf.read("messages/03-out.eml") == office.sink.messages()[1].raw
        manifest = zf.read("MANIFEST.txt").decode()
        assert re.search(r"^[0-9a-f]{64}  messages/02-out\.eml  ack_rights\.en@[0-9a-f]{7}$", manifest, re.M)
        assert re.search(r"  messages/03-out\.eml  staff_reply\.en@[0-9a-f]{7}$", manifest, re.M)
        case = json.loads(zf.read("case.json"))
        assert case["outcome"] == "partly_done" and case["identity"] == "verified" and case["exported_by"] == "alice"
        staff_events = [e for e in case["events"] if e["actor"] == "alice"]
        assert [e["kind"] for e in staff_events] == ["documents_received", "identity_verified", "extended",
                                                     "reply_queued", "outcome_recorded", "responded", "closed"]
    detail = case_detail(office.config, ref)
    assert detail["outcome_reason"].startswith("Some records") and detail["customer_waiting"] is False


def test_a_customers_answer_waits_in_the_queue_and_the_digest_until_staff_act(office: Office) -> None:
    office.mailbox.append([mail_bytes(sender="Ken Ito <ken@example.jp>", subject="Paper form",
                                      message_id="<inq-2@customer.test>", date=office.clock.now,
                                      body="Please send me a copy of my personal data.")])
    office.run_once()
    ack = office.sink.wait_for(1)[0].message
    ref = re.search(r"\[(PRV-\d{4}-\d{5})\]", str(ack["Subject"])).group(1)
    client = office.client()

    def waiting_section() -> str:
        return client.get("/").text.split('id="q-waiting"')[1].split("</section>")[0]

    def digest() -> str:
        result = bot(office.config, "digest", "--print")
        assert result.returncode == 0, result.stderr
        return result.stdout.split("CUSTOMERS WAITING FOR US")[1].split("NEW SINCE")[0]

    assert ref not in waiting_section() and ref not in digest()
    office.clock.advance(minutes=30)
    office.mailbox.append([mail_bytes(sender="ken@example.jp", subject=f"Re: [{ref}] Paper form",
                                      message_id="<ans-2@customer.test>", date=office.clock.now,
                                      headers={"In-Reply-To": ack["Message-ID"]},
                                      body="My name is Ken Ito, 1-2-3 Marunouchi, Tokyo. Please post the form.")])
    office.run_once()
    assert len(office.sink.messages()) == 1  # no second acknowledgement
    assert ref in waiting_section() and ref in digest() and "(1)" in bot(office.config, "digest", "--print").stdout
    assert case_detail(office.config, ref)["customer_waiting"] is True
    page = client.get(f"/cases/{ref}").text
    assert "1-2-3 Marunouchi" in page and "customer waiting" in page
    act(client, ref, "reply", message="We posted the form to you today.")
    office.sink.wait_for(2)
    assert ref not in waiting_section() and ref not in digest()
    assert case_detail(office.config, ref)["customer_waiting"] is False


def test_staff_actions_on_the_command_line_name_who_acted(office: Office) -> None:
    office.mailbox.append([mail_bytes(sender="aya@example.jp", subject="住所の訂正", message_id="<inq-3@customer.test>",
                                      date=office.clock.now, body="登録されている住所が間違っています。訂正をお願いします。")])
    office.run_once()
    ack = office.sink.wait_for(1)[0].message
    ref = re.search(r"\[(PRV-\d{4}-\d{5})\]", str(ack["Subject"])).group(1)
    cfg = office.config

    def ok(*args: str) -> str:
        result = bot(cfg, "cases", *args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert bot(cfg, "cases", "handled", ref, "--as", "bob").returncode == 2  # nothing is waiting
    ok("docs-received", ref, "--as", "bob")
    ok("identity", ref, "--insufficient", "The copy of the licence is cut off; please send both sides.", "--as", "bob")
    insufficient = office.sink.wait_for(2)[1].message
    assert f"[{ref}]" in insufficient["Subject"] and insufficient["In-Reply-To"] == "<inq-3@customer.test>"
    assert "both sides" in insufficient.get_body(("plain",)).get_content()
    detail = case_detail(cfg, ref)
    assert (detail["status"], detail["identity"], detail["due_at"]) == ("awaiting_documents", "insufficient", None)
    ok("docs-received", ref, "--as", "bob")
    ok("identity", ref, "--verified", "My Number card", "--as", "bob")
    ok("reply", ref, "--message", "書類を受け取りました。", "--as", "bob")
    office.sink.wait_for(3)
    ok("outcome", ref, "--outcome", "done", "--as", "bob")
    out = Path(cfg.parent / "pack.zip")
    printed = ok("export", ref, "--out", str(out), "--as", "bob")
    assert "pack.zip" in printed and verify_manifest(out.read_bytes()) == []
    detail = case_detail(cfg, ref)
    assert detail["identity"] == "verified" and detail["identity_document"] == "My Number card"
    assert detail["outcome"] == "done" and detail["due_at"] is not None
    staff = [e for e in detail["events"] if e["actor"] != "bot"]
    assert {e["actor"] for e in staff} == {"bob"} and len(staff) == 7
    with zipfile.ZipFile(out) as zf:
        assert sorted(n for n in zf.namelist() if n.startswith("messages/")) == [
            "messages/01-in.eml", "messages/02-out.eml", "messages/03-out.eml", "messages/04-out.eml"]
        assert "staff_reply.ja@" in zf.read("MANIFEST.txt").decode()


def test_export_refuses_when_the_mailbox_cannot_be_read(tmp_path: Path, office: Office) -> None:
    office.mailbox.append([mail_bytes(sender="ruth@example.com", subject="My data", message_id="<inq-4@x>",
                                      date=office.clock.now, body="Please send me a copy of my personal data.")])
    office.run_once()
    ref = re.search(r"\[(PRV-\d{4}-\d{5})\]", str(office.sink.wait_for(1)[0].message["Subject"])).group(1)
    broken = console_config(tmp_path / "broken", office.settings.database.url, imap_port=1,
                            smtp_port=office.sink.port)
    out = tmp_path / "pack.zip"
    result = bot(broken, "cases", "export", ref, "--out", str(out))
    assert result.returncode == 1 and "mailbox" in result.stderr and not out.exists()
