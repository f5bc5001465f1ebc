"""Section 2: backlog drain (`run --once` over M waiting inquiries) against the raw IMAP+SMTP limit."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from imapclient.response_parser import parse_fetch_response

from bench.harness import BotRun, Context, Row, inquiry
from tests.botrun import ROOT

SECTION = "2 backlog drain"
RAW_CONNECTIONS = 8
FETCH_BATCH = 500


def fill_backlog(ctx: Context, count: int, *, start: int = 0, extra: list[bytes] | None = None) -> tuple[list[int], float]:
    """Empty INBOX, then APPEND `count` inquiries (plus `extra`); returns (UIDs, seconds taken)."""
    ctx.dovecot.reset()
    raws = [inquiry(start + i)[1] for i in range(count)]
    if extra:
        middle = len(raws) // 2
        raws[middle:middle] = extra
    t0 = time.monotonic()
    uids = ctx.dovecot.append(raws)
    return uids, time.monotonic() - t0


def drain(ctx: Context, label: str, *, python_args: tuple[str, ...] = (),
          timeout: float = 900) -> tuple[BotRun, float | None, Path]:
    """Run `run --once` on what is in INBOX with a fresh database, until it exits.

    `run --once` sends everything it queued before it exits, and the sink has accepted each reply
    before the bot sees its 250, so every reply is counted once the process is gone.
    Returns (bot, seconds from process start to the last reply (None if none), config).
    """
    ctx.sink.reset()
    config, _ = ctx.config(label)
    bot = BotRun(config, "run", "--once", python_args=python_args)
    code = bot.finish(timeout=timeout)
    if code != 0:
        raise RuntimeError(f"run --once exited {code}:\n{bot.tail()}")
    receipts = ctx.sink.receipts
    if not receipts:
        return bot, None, config
    return bot, max(r.at for r in receipts) - bot.started, config


def raw_fetch(ctx: Context, uids: list[int]) -> tuple[float, int]:
    """Plain imapclient: FETCH BODY.PEEK[] of the UIDs in ranges of FETCH_BATCH; (seconds, bytes)."""
    client = ctx.dovecot.client()
    try:
        client.select_folder("INBOX", readonly=True)
        ordered = sorted(uids)
        total = 0
        t0 = time.monotonic()
        for i in range(0, len(ordered), FETCH_BATCH):
            chunk = ordered[i : i + FETCH_BATCH]
            # imapclient's fetch() takes a UID list only; send a real range through its imaplib
            # connection and parse the answer with imapclient's own parser, as fetch() would.
            typ, data = client._imap.uid("FETCH", f"{chunk[0]}:{chunk[-1]}", "(BODY.PEEK[])")
            if typ != "OK":
                raise RuntimeError(f"UID FETCH failed: {data!r}")
            got = parse_fetch_response(data, True, True)
            total += sum(len(v[b"BODY[]"]) for v in got.values() if b"BODY[]" in v)
        return time.monotonic() - t0, total
    finally:
        client.logout()


def raw_send(ctx: Context, count: int, size: int) -> float:
    """aiosmtplib from its own process (bench.rawsend): `count` messages of `size` bytes over
    RAW_CONNECTIONS connections to the same sink the bot sends to; seconds."""
    ctx.sink.reset()
    done = subprocess.run([sys.executable, "-m", "bench.rawsend", "--port", str(ctx.sink.port), "--count", str(count),
                           "--size", str(size), "--connections", str(RAW_CONNECTIONS)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"bench.rawsend failed: {done.stderr[-2000:]}")
    result = json.loads(done.stdout)
    if result["sent"] != count or ctx.sink.count() != count:
        raise RuntimeError(f"raw send: {result['sent']} sent, sink has {ctx.sink.count()} of {count}")
    return float(result["seconds"])


def run(ctx: Context) -> list[Row]:
    m = ctx.args.drain
    if m <= 0:
        return []
    rows: list[Row] = []
    uids, t_append = fill_backlog(ctx, m)
    rows.append(Row(SECTION, "backlog APPENDed before start", m, "mails", note=f"{m / t_append:,.0f} APPEND/s, one connection"))
    bot, elapsed, config = drain(ctx, "drain")
    got = ctx.sink.count()
    if elapsed is None:
        rows.append(Row(SECTION, "replies received", got, "mails", f"{m}", False, "timed out"))
        return rows
    receipts = ctx.sink.receipts
    first = min(r.at for r in receipts)
    avg_size = sum(r.size for r in receipts) / len(receipts)
    matched = len({r.in_reply_to for r in receipts} & {inquiry(i)[0] for i in range(m)})
    bot_rate = m / elapsed
    rows.append(Row(SECTION, "replies received / matched by In-Reply-To", f"{got} / {matched}", "", f"{m}",
                    got == m and matched == m))
    rows.append(Row(SECTION, "run --once: start to last reply", elapsed, "s"))
    rows.append(Row(SECTION, "  of which start to first reply", first - bot.started, "s"))
    rows.append(Row(SECTION, "bot drain rate", bot_rate, "mails/s"))
    rows.append(Row(SECTION, "  rate first to last reply", (m - 1) / (max(r.at for r in receipts) - first), "mails/s"))
    rows.append(Row(SECTION, "average reply size", avg_size / 1024, "KiB"))

    t_fetch, fetched_bytes = raw_fetch(ctx, uids)
    t_send = raw_send(ctx, m, int(avg_size))
    raw_rate = m / (t_fetch + t_send)
    rows.append(Row(SECTION, "raw FETCH BODY.PEEK[] (500-UID ranges)", m / t_fetch, "mails/s",
                    note=f"{fetched_bytes / t_fetch / 2**20:.0f} MiB/s"))
    rows.append(Row(SECTION, f"raw aiosmtplib send x{RAW_CONNECTIONS} conns", m / t_send, "mails/s",
                    note=f"{m} x {avg_size / 1024:.0f} KiB"))
    rows.append(Row(SECTION, "raw limit (fetch + send, in sequence)", raw_rate, "mails/s"))
    ratio = bot_rate / raw_rate * 100
    rows.append(Row(SECTION, "bot / raw", ratio, "%", ">= 50 %", ratio >= 50))
    ctx.shared["drain"] = {"bot": bot, "config": config, "count": m}
    return rows
