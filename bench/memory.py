"""Section 3: memory. Peak RSS of the drain, of a backlog holding one 25 MB attachment, and of a
restart over a mailbox of old, already processed mail (which must not be fetched again)."""

from __future__ import annotations

import os
import pwd
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.drain import drain, fill_backlog
from bench.harness import BotRun, Context, Row, big_inquiry, inquiry

SECTION = "3 memory"
TARGET_MB = 200.0


def _rss_row(name: str, value_mb: float, note: str = "") -> Row:
    return Row(SECTION, name, value_mb, "MB", f"< {TARGET_MB:.0f} MB", value_mb < TARGET_MB, note)


def restart(ctx: Context, config: Path, *, user: str, probe_index: int, label: str) -> list[Row]:
    """Start `run` on a mailbox whose mail is all processed, with one new inquiry waiting.

    Ready = the new inquiry's reply reached the sink (the catch-up pass is done). Old mail
    fetched again shows up as extra "uid=" log lines.
    """
    mid, raw = inquiry(probe_index)
    ctx.dovecot.append([raw], user=user)
    ctx.sink.reset()
    bot = BotRun(config, "run")
    try:
        watching = bot.wait_line(r"watching ", timeout=120)
        answered = ctx.sink.wait_count(1, timeout=300)
        at = ctx.sink.receipts[0].at if answered else None
        time.sleep(0.5)
        bot.rss.sample()
        rss_now = bot.rss.rss_kb / 1024
    finally:
        bot.terminate()
        bot.finish(timeout=30)
    taken_in = bot.count_lines(r"uid=\d+ ")
    rows = [
        Row(SECTION, f"{label}: start to watching", (watching - bot.started) if watching else None, "s"),
        Row(SECTION, f"{label}: start to first reply (ready)", (at - bot.started) if at else None, "s",
            note="one new inquiry was waiting"),
        Row(SECTION, f"{label}: mails taken in on restart", taken_in, "", "1 (only the new one)", taken_in == 1),
        _rss_row(f"{label}: RSS after ready", rss_now),
        _rss_row(f"{label}: peak RSS", bot.peak_rss_mb),
    ]
    if ctx.sink.receipts and ctx.sink.receipts[0].in_reply_to != mid:
        rows.append(Row(SECTION, f"{label}: reply threads to the new inquiry", "no", "", "yes", False))
    return rows


def old_maildir(ctx: Context, user: str, count: int) -> float:
    """Write `count` old inquiries, flagged \\Seen, straight into the user's Maildir/cur (as a delivery
    agent would); Dovecot indexes them on the next SELECT. Returns seconds spent writing."""
    home = ctx.dovecot.dir / "mail" / user / "Maildir"
    mail = pwd.getpwnam("mail")
    t0 = time.monotonic()
    for sub in ("cur", "new", "tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    templates = [inquiry(i) for i in range(22)]
    stamp = int(time.time()) - 86400 * 30
    cur = home / "cur"
    for i in range(count):
        mid, raw = templates[i % len(templates)]
        data = raw.replace(mid.encode(), f"<old-{i}@customer.test>".encode(), 1)
        path = cur / f"{stamp + i // 1000}.M{i}P1Q{i}.bench,S={len(data)}:2,S"
        path.write_bytes(data)
        os.chown(path, mail.pw_uid, mail.pw_gid)
    for p in [home, *(home / s for s in ("cur", "new", "tmp")), home.parent]:
        os.chown(p, mail.pw_uid, mail.pw_gid)
        p.chmod(0o700)
    return time.monotonic() - t0


def processed_db(ctx: Context, user: str, uidvalidity: int, uids: list[int], label: str) -> str:
    """A fresh database in which every one of `uids` is already taken in (cursor + ledger)."""
    from sqlalchemy import insert

    from bot.adapters.store.engine import make_engine
    from bot.adapters.store.tables import CursorRow, LedgerRow

    url = ctx.dbs.new(label)
    engine = make_engine(url)
    name = ctx.mailbox_name(user)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(CursorRow), [{"mailbox": name, "uidvalidity": uidvalidity, "last_uid": max(uids),
                                          "initial_done": True, "updated_at": now}])
        for i in range(0, len(uids), 20_000):
            conn.execute(insert(LedgerRow), [
                {"mailbox": name, "uidvalidity": uidvalidity, "uid": u, "message_row_id": None,
                 "outcome": "new_case", "processed_at": now, "flagged": True} for u in uids[i : i + 20_000]
            ])
    engine.dispose()
    return url


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    d = ctx.shared.get("drain")
    if d is not None:
        rows.append(_rss_row(f"drain of {d['count']:,}: peak RSS", d["bot"].peak_rss_mb, "run --once, VmHWM polled"))

    # restart over the drained mailbox: nothing old may be fetched again
    if d is not None:
        rows += restart(ctx, d["config"], user="bot", probe_index=600_000, label=f"restart, {d['count']:,} old")

    # one 25 MB attachment in a backlog
    big_mb = ctx.args.attachment_mb
    if big_mb > 0:
        k = ctx.args.attachment_backlog
        mid, raw = big_inquiry(0, big_mb * 2**20)
        fill_backlog(ctx, k, start=500_000, extra=[raw])
        bot, _elapsed, _cfg = drain(ctx, "bigatt")
        got = ctx.sink.count()
        answered = any(r.in_reply_to == mid for r in ctx.sink.receipts)
        rows.append(_rss_row(f"{k} + one {big_mb} MB attachment: peak RSS", bot.peak_rss_mb,
                             f"mail {len(raw) / 2**20:.0f} MB on the wire; replies {got}/{k + 1}"
                             + ("" if answered else "; the big one got no reply")))

    # restart over a big mailbox of old, processed mail
    n = ctx.args.big_mailbox
    if n > 0:
        user = "alice"
        t_write = old_maildir(ctx, user, n)
        client = ctx.dovecot.client(user)
        t0 = time.monotonic()
        info = client.select_folder("INBOX", readonly=True)
        t_index = time.monotonic() - t0
        uids = client.search(["ALL"])
        client.logout()
        uidvalidity = int(info[b"UIDVALIDITY"])
        url = processed_db(ctx, user, uidvalidity, list(uids), "bigmbox")
        config, _ = ctx.config("bigmbox", user=user, db_url=url)
        rows.append(Row(SECTION, "big mailbox: old mails in INBOX", len(uids), "mails",
                        note=f"written in {t_write:.1f} s, first SELECT (Dovecot indexing) {t_index:.1f} s"))
        rows += restart(ctx, config, user=user, probe_index=700_000, label=f"restart, {len(uids):,} old")
    flat = [r for r in rows if r.name.endswith("RSS after ready")]
    if len(flat) == 2 and flat[0].value and flat[1].value:
        growth = float(flat[1].value) - float(flat[0].value)  # type: ignore[arg-type]
        rows.append(Row(SECTION, "RSS after ready, big minus drained mailbox", growth, "MB", "flat (< +20 MB)",
                        growth < 20, "the drained one also holds its cases in the database; the big one only a ledger"))
    return rows


__all__ = ["old_maildir", "processed_db", "restart", "run"]
