"""Section 1: reply latency under IDLE, next to a bare imapclient IDLE listener on the same mailbox."""

from __future__ import annotations

import random
import re
import threading
import time

from imapclient import IMAPClient

from bench.harness import BotRun, Context, Row, percentile
from bot.demo.loopback import crlf
from tests.mailservers import Dovecot

SECTION = "1 latency (IDLE)"
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
_TAKEN_IN = re.compile(r" uid=(\d+) ref=")


def _pair(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a:,.0f} / {b:,.0f}"


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


def _stragglers(ctx: Context, bot: BotRun, before: int, mails_from: int) -> list[float | None]:
    """Mail that lands while the bot is busy with another, with nothing arriving after it.

    Each try appends inquiry A, waits for the bot's log line for A (the pass is running), appends
    B at once and then nothing; B's latency is APPEND -> reply, or None if no reply came within
    --straggler-wait seconds.
    """
    from bench.harness import inquiry

    results: list[float | None] = []
    expected = before
    writer = ctx.dovecot.client()
    try:
        for t in range(ctx.args.stragglers):
            _a_mid, a_raw = inquiry(mails_from + 2 * t)
            b_mid, b_raw = inquiry(mails_from + 2 * t + 1)
            resp = writer.append("INBOX", crlf(a_raw))
            m = _APPENDUID.search(resp)
            a_uid = int(m.group(1)) if m else -1
            if bot.wait_line(rf" uid={a_uid} ref=", timeout=10) is None:
                results.append(None)
                continue
            writer.append("INBOX", crlf(b_raw))
            t0 = time.monotonic()
            expected += 2
            end = t0 + ctx.args.straggler_wait
            got = None
            while time.monotonic() < end and got is None:
                got = next((r.at for r in list(ctx.sink.receipts) if r.in_reply_to == b_mid), None)
                time.sleep(0.01)
            results.append(None if got is None else (got - t0) * 1000)
            if got is None:  # the next try's A wakes the bot; the last one must not linger
                continue
    finally:
        writer.logout()
    return results


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
        uid_of: dict[str, int] = {}
        writer = ctx.dovecot.client()
        try:
            for mid, raw in mails:
                time.sleep(rng.uniform(ctx.args.gap_min / 1000, ctx.args.gap_max / 1000))
                data = crlf(raw)
                resp = writer.append("INBOX", data)
                appended[mid] = time.monotonic()  # the APPEND completed: the mail is in the mailbox
                order.append(mid)
                got_uid = _APPENDUID.search(resp)
                if got_uid:
                    uid_of[mid] = int(got_uid.group(1))
        finally:
            writer.logout()
        done = ctx.sink.wait_count(n, timeout=60)
        in_time = ctx.sink.count()
        time.sleep(0.3)
        bare.stop()
        stragglers = _stragglers(ctx, bot, n, mails_from=n)
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
    # where the bot's share goes: its log line for the mail (taken in, reply queued) vs the reply's arrival
    logged: dict[int, float] = {}
    for at, text in bot.lines:
        m = _TAKEN_IN.search(text)
        if m:
            logged.setdefault(int(m.group(1)), at)
    to_log, log_to_reply = [], []
    for mid in order:
        uid = uid_of.get(mid)
        if uid in logged and mid in replies:
            to_log.append((logged[uid] - appended[mid]) * 1000)
            log_to_reply.append((replies[mid] - logged[uid]) * 1000)
    missing = n - len(bot_ms)
    late = len(bot_ms) - in_time
    rows.append(Row(SECTION, "inquiries appended / answered within 60 s of the last", f"{n} / {in_time}", "",
                    f"all {n}", missing == 0 and done,
                    f"gaps {ctx.args.gap_min}-{ctx.args.gap_max} ms, uniform random"
                    + (f"; {late} answered only later" if late > 0 else "")))
    for label, values in (("APPEND -> reply at sink", bot_ms), ("APPEND -> bare IDLE EXISTS", bare_ms)):
        for p in (50, 95, 99):
            rows.append(Row(SECTION, f"{label} p{p}", percentile(values, p), "ms"))
        rows.append(Row(SECTION, f"{label} max", max(values) if values else None, "ms"))
    targets = {50: 50.0, 99: 200.0}
    for p in (50, 95, 99):
        v = percentile(diff_ms, p)
        t = targets.get(p)
        rows.append(Row(SECTION, f"bot adds (reply - bare IDLE) p{p}", v, "ms",
                        f"< {t:.0f} ms" if t else "", (v is not None and v < t) if t else None))
    slowest = sorted(((d, k) for k, d in enumerate(diff_ms, 1)), reverse=True)[:5]
    rows.append(Row(SECTION, "bot adds, the slowest five (mail number: ms)",
                    ", ".join(f"#{k}: {d:,.0f}" for d, k in slowest) or "-", "",
                    note="what the bot adds over the bare listener for the same mail"))
    rows.append(Row(SECTION, "  APPEND -> bot logs the mail taken in, p50 / p99",
                    _pair(percentile(to_log, 50), percentile(to_log, 99)), "ms", note="stderr line read by the bench"))
    rows.append(Row(SECTION, "  taken in -> reply at sink, p50 / p99",
                    _pair(percentile(log_to_reply, 50), percentile(log_to_reply, 99)), "ms"))
    tries, waited = ctx.args.stragglers, ctx.args.straggler_wait
    if tries > 0:
        answered = [s for s in stragglers if s is not None]
        rows.append(Row(SECTION, f"straggler: lands during a pass, then silence; answered < {waited:.0f} s",
                        f"{len(answered)} / {tries}", "", f"{tries} / {tries}", len(answered) == tries,
                        "latency " + ", ".join("-" if s is None else f"{s:,.0f}" for s in stragglers) + " ms"))
    rows.append(Row(SECTION, "bot peak RSS during the run", bot.peak_rss_mb, "MB", "< 200 MB",
                    bot.peak_rss_mb < 200))
    ctx.shared["latency_ms"] = {"bot": bot_ms, "bare": bare_ms, "diff": diff_ms}
    return rows
