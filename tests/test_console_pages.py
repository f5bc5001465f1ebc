"""What the console's pages list, in process on a real database: the queue's sections, the case list's
filters and pages, the quarantine, template previews, the Japanese default and ?lang=en."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from bot.staff import actions
from tests.console import make_desk, signed_in
from tests.factories import mail_bytes


@pytest.fixture
def desk(tmp_path: Path, db_url: str):
    d = make_desk(tmp_path, db_url, web={"page_size": 10})
    yield d
    d.engine.dispose()


def section(html: str, name: str) -> set[str]:
    part = html.split(f'id="q-{name}"')[1].split("</section>")[0]
    return set(re.findall(r'href="/cases/(PRV-\d{4}-\d{5})"', part))


def test_the_queue_sorts_the_mornings_work(desk) -> None:
    now = desk.clock.now
    month_ago = now - timedelta(days=30)
    policy = desk.settings.case_policy
    rights = "Please send me a copy of all personal information you hold about me."
    overdue = desk.inquiry(sender="a@example.com", body=rights, when=month_ago)
    soon = desk.inquiry(sender="b@example.com", body=rights, when=month_ago)
    awaiting = desk.inquiry(sender="c@example.com", body=rights, when=month_ago)
    general = desk.inquiry(sender="d@example.com", subject="Hello", body="Hello, your cars are great.", when=month_ago)
    opt_out = desk.inquiry(sender="e@example.com", subject="Stop", body="Please stop sending me marketing mail.",
                           when=month_ago)
    for ref, days in ((overdue, 20), (soon, 12)):
        on = now - timedelta(days=days)
        actions.documents_received(desk.engine, ref, on, now=on, policy=policy, actor="alice")
    html = signed_in(desk, "alice", "staff").get("/").text
    assert section(html, "overdue") == {overdue}
    assert section(html, "soon") == {soon}
    assert section(html, "awaiting") == {awaiting}
    assert section(html, "staff") == {general}
    assert section(html, "optout") == {opt_out}
    assert section(html, "waiting") == set()
    days_waiting = html.split('id="q-awaiting"')[1].split("</tr>")[1]
    assert '<td class="num">30</td>' in days_waiting  # awaiting documents, with the days waited


def test_the_case_list_filters_and_pages(desk) -> None:
    rights = "Please delete my personal data."
    refs = [desk.inquiry(sender=f"person{i}@example.com", body=rights) for i in range(12)]
    general = desk.inquiry(sender="odd.one@example.org", subject="Hello", body="Hello, your cars are great.")
    client = signed_in(desk, "alice", "staff")

    def listed(query: str) -> list[str]:
        return re.findall(r'<td><a href="/cases/(PRV-\d{4}-\d{5})">', client.get(f"/cases{query}").text)

    first = client.get("/cases").text
    assert "Page 1 of 2" in first and listed("") == [general, *reversed(refs)][:10]
    assert listed("?page=2") == list(reversed(refs))[9:]
    assert listed("?status=needs_staff") == [general]
    assert listed("?kind=deletion&status=awaiting_documents") == list(reversed(refs))[:10]
    assert listed("?q=ODD.ONE") == [general] and listed("?q=odd.one@example.org") == [general]
    assert listed(f"?q={refs[3].lower()}") == [refs[3]]
    assert listed("?overdue=1") == []
    assert listed("?status=bogus&page=-3")[:1] == [general]  # unknown filters are ignored, not errors
    nxt = re.search(r'<a rel="next" href="([^"]+)"', client.get("/cases?kind=deletion").text).group(1)
    assert nxt.replace("&amp;", "&") == "/cases?kind=deletion&page=2"


def test_quarantine_templates_and_languages(desk) -> None:
    desk.take(b"")  # unreadable: quarantined
    desk.take(mail_bytes(sender="q@example.com", subject="x", body="y", message_id="<q@x>"))
    admin = signed_in(desk, "ada", "admin")
    quarantine = admin.get("/quarantine").text
    assert re.search(r'<span class="count">1</span>', quarantine)
    templates = admin.get("/templates").text
    for name in ("ack_rights", "ack_general", "staff_reply", "reminder_documents"):
        assert f"{name}.ja@" in templates and f"{name}.en@" in templates
    assert 'role="alert"' not in templates  # every template renders
    assert "対応キュー" in admin.get("/?lang=ja").text and "Queue" in admin.get("/?lang=en").text
    assert "対応キュー" not in admin.get("/").text  # the choice stays for the session


def test_the_console_speaks_japanese_by_default(tmp_path: Path) -> None:
    desk = make_desk(tmp_path, f"sqlite:///{tmp_path / 'ja.db'}", web={"language": "ja"})
    client = desk.client()
    login = client.get("/login").text
    assert "ユーザー名" in login and "サインイン" in login and 'lang="ja"' in login
    assert "Username" in client.get("/login?lang=en").text
    desk.engine.dispose()
