"""Section 1: reply latency under IDLE, next to a bare imapclient IDLE listener on the same mailbox."""

from __future__ import annotations

import random
import threading
import time

from imapclient import IMAPClient

from bench.harness import BotRun, Context, Row, percentile
from tests.mailservers import Dovecot, _crlf

SECTION = "1 latency (IDLE)"


class BareIdle:
    """One imapclient connection in IDLE on INBOX; notes when each message number is first announced.

    The mailbox starts empty and nothing is expunged while it runs, so message number k is the
    k-th APPEND: EXISTS n announces every number up to n at that moment.
    """

    def __init__(self, dovecot: Dovecot) -> None:
        self.client: IMAPClient = dovecot.client()
        info = self.client.select_folder("INBOX", readonly=True)
        self.base = int(info.get(b"EXISTS", 0))
        self.seen_at: dict[int, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bare-idle", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _run(self) -> None:
        c = self.client
        c.idle()
        self._ready.set()
        announced = self.base
        try:
            while not self._stop.is_set():
                for resp in c.idle_check(timeout=0.2):
                    if len(resp) > 1 and resp[1] == b"EXISTS":
                        now = time.monotonic()
                        n = int(resp[0])
                        for k in range(announced + 1, n + 1):
                            self.seen_at.setdefault(k - self.base, now)
                        announced = max(announced, n)
        finally:
            try:
                c.idle_done()
                c.logout()
            except Exception:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run(ctx: Context) -> list[Row]:
    from bench.harness import inquiry

    n = ctx.args.latency
    if n <= 0:
        return []
    ctx.dovecot.reset()
    ctx.sink.reset()
    config, _ = ctx.config("latency")
    rng = random.Random(ctx.args.seed)
    mails = [inquiry(i) for i in range(n)]

    bot = BotRun(config, "run")
    rows: list[Row] = []
    try:
        ready = bot.wait_line(r"watching .*IDLE", timeout=60)
        if ready is None:
            raise RuntimeError(f"bot did not start watching:\n{bot.tail()}")
        rows.append(Row(SECTION, "bot start to watching (IDLE)", ready - bot.started, "s"))
        time.sleep(0.5)  # let the bot enter IDLE
        bare = BareIdle(ctx.dovecot)
        appended: dict[str, float] = {}
        order: list[str] = []
        writer = ctx.dovecot.client()
        try:
            for mid, raw in mails:
                time.sleep(rng.uniform(ctx.args.gap_min / 1000, ctx.args.gap_max / 1000))
                data = _crlf(raw)
                writer.append("INBOX", data)
                appended[mid] = time.monotonic()  # the APPEND completed: the mail is in the mailbox
                order.append(mid)
        finally:
            writer.logout()
        done = ctx.sink.wait_count(n, timeout=60)
        time.sleep(0.3)
        bare.stop()
    finally:
        bot.terminate()
        bot.finish(timeout=30)

    replies = {r.in_reply_to: r.at for r in ctx.sink.receipts}
    bot_ms, bare_ms, diff_ms = [], [], []
    for k, mid in enumerate(order, 1):
        t0 = appended[mid]
        b = (replies[mid] - t0) * 1000 if mid in replies else None
        i = (bare.seen_at[k] - t0) * 1000 if k in bare.seen_at else None
        if b is not None:
            bot_ms.append(b)
        if i is not None:
            bare_ms.append(i)
        if b is not None and i is not None:
            diff_ms.append(b - i)
    missing = n - len(bot_ms)
    rows.append(Row(SECTION, "inquiries appended / answered", f"{n} / {len(bot_ms)}", "",
                    f"all {n}", missing == 0 and done,
                    f"gaps {ctx.args.gap_min}-{ctx.args.gap_max} ms, uniform random"))
    for label, values in (("APPEND -> reply at sink", bot_ms), ("APPEND -> bare IDLE EXISTS", bare_ms)):
        for p in (50, 95, 99):
            rows.append(Row(SECTION, f"{label} p{p}", percentile(values, p), "ms"))
    targets = {50: 50.0, 99: 200.0}
    for p in (50, 95, 99):
        v = percentile(diff_ms, p)
        t = targets.get(p)
        rows.append(Row(SECTION, f"bot adds (reply - bare IDLE) p{p}", v, "ms",
                        f"< {t:.0f} ms" if t else "", (v is not None and v < t) if t else None))
    rows.append(Row(SECTION, "bot peak RSS during the run", bot.peak_rss_mb, "MB", "< 200 MB",
                    bot.peak_rss_mb < 200))
    ctx.shared["latency_ms"] = {"bot": bot_ms, "bare": bare_ms, "diff": diff_ms}
    return rows
