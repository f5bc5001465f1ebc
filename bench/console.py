"""Section 6: the staff console at size: the queue, the case list (plain, filtered, searched, a deep
page) and a case page over `--cases` bulk-inserted cases (bench.staff_views.build), served by a real
`web` process and timed from the client, each page asked `--console-requests` times after one warm-up.

The case page reads its customer mail back from Dovecot by UID, as in production: one real inquiry
is appended to the console's mailbox and the timed case points at it. Target: every page under 200 ms
(p95)."""

from __future__ import annotations

import http.cookiejar
import re
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta

from bench.harness import Context, Row
from bench.staff_views import build
from tests.botrun import ROOT, edit_config
from tests.factories import mail_bytes
from tests.mailservers import free_ports

SECTION = "6 console"
TARGET_MS = 200.0
PASSWORD = "bench console password"


def _prepare(url: str, now: datetime, uid: int, message_id: str) -> str:
    """Mark some cases customer-waiting, point the newest awaiting case at the real mail; its ref."""
    from sqlalchemy import select, update

    from bot.adapters.store.engine import make_engine
    from bot.adapters.store.tables import CaseRow, MessageRow

    engine = make_engine(url)
    c = CaseRow.__table__.c  # type: ignore[attr-defined]
    m = MessageRow.__table__.c  # type: ignore[attr-defined]
    with engine.begin() as conn:
        conn.execute(update(CaseRow).where(c.id % 997 == 0).values(customer_waiting_since=now - timedelta(hours=5)))
        case_id, ref = conn.execute(select(c.id, c.ref).where(c.status == "awaiting_documents")
                                    .order_by(c.id.desc()).limit(1)).one()
        conn.execute(update(MessageRow).where(m.case_id == case_id, m.direction == "in")
                     .values(mailbox_uid=uid, message_id=message_id))
    with engine.begin() as conn:  # statistics, as autovacuum (PostgreSQL) or a maintained database would have
        conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return str(ref)


class Browser:
    """A signed-in client with a cookie jar (urllib: no redirects followed past sign-in)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, bytes]:
        with self.opener.open(self.base + path, timeout=30) as answer:
            return answer.status, answer.read()

    def sign_in(self, name: str) -> None:
        _, page = self.get("/login")
        token = re.search(rb'name="csrf_token" value="([^"]+)"', page).group(1).decode()
        data = urllib.parse.urlencode({"username": name, "password": PASSWORD, "csrf_token": token}).encode()
        with self.opener.open(self.base + "/login", data=data, timeout=30) as answer:
            if "/login" in answer.url:
                raise RuntimeError("bench sign-in refused")


def run(ctx: Context) -> list[Row]:
    n = ctx.args.cases
    if n <= 0:
        return []
    now = datetime.now(UTC)
    url = ctx.dbs.new("console")
    t_build = build(url, n, ctx.args.seed + 6, now)
    port = free_ports(1)[0]
    config, _ = ctx.config("console", user="alice", db_url=url)
    edit_config(config, {"web": {"secret_key": "bench-console-secret-0123456789abcdef", "port": port, "language": "en"}})
    message_id = "<bench-console-case@customer.test>"
    [uid] = ctx.dovecot.append([mail_bytes(sender="customer@example.jp", subject="開示のお願い", message_id=message_id,
                                           body="私の個人情報を開示してください。")], user="alice")
    ref = _prepare(url, now, uid, message_id)
    added = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config), "users", "add", "bench",
                            "--role", "staff", "--password-stdin"], input=PASSWORD + "\n", text=True,
                           capture_output=True, cwd=ROOT, timeout=120)
    if added.returncode != 0:
        raise RuntimeError(f"users add: {added.stderr[-500:]}")
    web = subprocess.Popen([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config), "web"], cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = [Row(SECTION, "cases bulk-inserted", n, "cases", note=f"built in {t_build:.1f} s")]
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise RuntimeError("web did not start") from None
                time.sleep(0.1)
        client = Browser(base)
        client.sign_in("bench")
        pages = [("queue `/`", "/"), ("case list `/cases`", "/cases"),
                 ("filtered `/cases?status=awaiting_documents&kind=deletion`", "/cases?status=awaiting_documents&kind=deletion"),
                 ("overdue `/cases?overdue=1`", "/cases?overdue=1"),
                 ("search `/cases?q=customer4242`", "/cases?q=customer4242"),
                 ("deep page `/cases?page=1500`", "/cases?page=1500"),
                 (f"case page `/cases/{ref}` (mail read from Dovecot)", f"/cases/{ref}")]
        repeat = ctx.args.console_requests
        for label, path in pages:
            status, body = client.get(path)  # warm-up
            if status != 200 or b"<h1>" not in body:
                raise RuntimeError(f"{path}: status {status}")
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                client.get(path)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
            rows.append(Row(SECTION, label, round(p95, 1), "ms p95", f"< {TARGET_MS:.0f} ms", p95 < TARGET_MS,
                            f"p50 {statistics.median(times):.1f} ms, {len(body) / 1024:.0f} KiB, {repeat} requests"))
    finally:
        web.terminate()
        try:
            web.wait(15)
        except subprocess.TimeoutExpired:
            web.kill()
    return rows
