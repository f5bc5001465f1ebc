"""Section 5: scale-out. One and two `run` processes on one PostgreSQL database and one mailbox
drain the same backlog; then the leader of two is killed mid-drain. Always on PostgreSQL (several
processes on one SQLite file are not a supported deployment)."""

from __future__ import annotations

import signal
import time
from collections import Counter

from bench.drain import fill_backlog
from bench.harness import BotRun, Context, Databases, Row, inquiry

SECTION = "5 scale-out (PostgreSQL)"


def _drain(ctx: Context, dbs: Databases, workers: int, m: int, *, kill_leader_at: float = 0.0,
           start: int = 0) -> dict[str, float | int | None]:
    """Start `workers` `run` processes on a fresh database over a backlog of m; wait for m replies."""
    fill_backlog(ctx, m, start=start)
    ctx.sink.reset()
    config, _ = ctx.config(f"scale{workers}", db_url=dbs.new(f"scale{workers}"))
    bots = [BotRun(config, "run")]
    if bots[0].wait_line("leading:", timeout=30) is None:
        raise RuntimeError(f"no leader:\n{bots[0].tail()}")
    bots += [BotRun(config, "run") for _ in range(workers - 1)]
    started = bots[0].started
    took_over: float | None = None
    try:
        if kill_leader_at:
            ctx.sink.wait_count(int(m * kill_leader_at), timeout=300)
            killed = time.monotonic()
            bots[0].proc.send_signal(signal.SIGKILL)
            at = bots[1].wait_line("leading:", timeout=30)
            took_over = at - killed if at else None
        done = ctx.sink.wait_count(m, timeout=900)
        time.sleep(1.0)  # anything sent twice would arrive now
    finally:
        for bot in bots:
            bot.terminate()
        for bot in bots:
            bot.finish(timeout=30)
    receipts = ctx.sink.receipts
    per = Counter(r.in_reply_to for r in receipts)
    wanted = {inquiry(start + i)[0] for i in range(m)}
    return {
        "elapsed": (max(r.at for r in receipts) - started) if done and receipts else None,
        "duplicates": sum(v - 1 for v in per.values() if v > 1),
        "lost": len(wanted - set(per)),
        "follower_sends": sum(b.count_lines(r"sent outbox=") for b in bots[1:]),
        "took_over": took_over,
    }


def run(ctx: Context) -> list[Row]:
    m = ctx.args.scale
    if m <= 0:
        return []
    dbs = Databases("postgresql", ctx.workdir)
    rows: list[Row] = []
    try:
        for workers in (1, 2):
            r = _drain(ctx, dbs, workers, m, start=700_000 + workers * 20_000)
            rate = m / r["elapsed"] if r["elapsed"] else None
            rows.append(Row(SECTION, f"{workers} worker(s): {m} mails drained", rate if rate else "timed out",
                            "mails/s" if rate else "", note=f"follower sent {r['follower_sends']}" if workers > 1 else ""))
            rows.append(Row(SECTION, f"{workers} worker(s): duplicates / lost", f"{r['duplicates']} / {r['lost']}", "",
                            "0 / 0", r["duplicates"] == 0 and r["lost"] == 0))
        r = _drain(ctx, dbs, 2, m, kill_leader_at=0.3, start=760_000)
        rows.append(Row(SECTION, "2 workers, leader SIGKILLed at 30 %: take-over",
                        r["took_over"] if r["took_over"] is not None else "none", "s" if r["took_over"] else "",
                        "within seconds", r["took_over"] is not None and float(r["took_over"]) < 5))
        rows.append(Row(SECTION, "  duplicates / lost", f"{r['duplicates']} / {r['lost']}", "", "0 / 0",
                        r["duplicates"] == 0 and r["lost"] == 0))
    finally:
        dbs.close()
    return rows
