"""Section 4: the staff views at size: `digest --print` and `cases list` over many cases.

The cases are bulk-inserted through bot.adapters.store's tables (a realistic mix of statuses, kinds and
dates over two years, each with its inbound message, its sent acknowledgement in the outbox and
its "opened" event, plus a few quarantined mails). Outbox bodies are kept small (a few hundred
bytes instead of a reply with its PDF) so that the build stays quick.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.harness import Context, Row
from tests.botrun import ROOT

SECTION = "4 staff views"
TARGET_S = 0.5  # issue 14: staff commands as fresh processes
RUNS = 4  # fresh processes after the first, per view
KINDS = ["disclosure", "amendment", "addition", "deletion", "third_party_stop", "marketing_opt_out", "general"]
STATUS_MIX = [("awaiting_documents", 30), ("in_progress", 12), ("responded", 18), ("closed", 32), ("needs_staff", 8)]


def build(url: str, count: int, seed: int, now: datetime) -> float:
    """Insert `count` cases (and their rows) into a fresh database; returns seconds."""
    from sqlalchemy import insert

    from bot.adapters.store.engine import make_engine
    from bot.adapters.store.tables import CaseRow, CounterRow, EventRow, MessageRow, OutboxRow

    rng = random.Random(seed)
    engine = make_engine(url)
    statuses = [s for s, w in STATUS_MIX for _ in range(w)]
    t0 = time.monotonic()
    per_year: dict[int, int] = {}
    cases, messages, outbox, events = [], [], [], []
    for cid in range(1, count + 1):
        opened = now - timedelta(days=730 * (1 - cid / count) ** 1.5, minutes=rng.randint(0, 1439))
        opened = min(opened, now - timedelta(minutes=5))
        year = opened.year
        per_year[year] = per_year.get(year, 0) + 1
        ref = f"PRV-{year}-{per_year[year]:05d}"
        status = rng.choice(statuses)
        if status == "needs_staff":
            kinds = "general"
        elif status == "in_progress" and rng.random() < 0.4:
            kinds = "marketing_opt_out"
        else:
            kinds = ",".join(sorted(rng.sample(KINDS[:5], rng.choice([1, 1, 1, 2])), key=KINDS.index))
        docs = due = responded = closed = None
        if status in ("in_progress", "responded", "closed") and kinds != "marketing_opt_out":
            docs = opened + timedelta(days=rng.randint(2, 20))
            due = docs + timedelta(days=14)
            if docs > now:
                docs = due = None
        if status in ("responded", "closed"):
            responded = (due or opened + timedelta(days=3)) - timedelta(days=rng.randint(0, 10))
            responded = min(responded, now - timedelta(minutes=1))
        if status == "closed":
            closed = min((responded or opened) + timedelta(days=rng.randint(0, 30)), now - timedelta(minutes=1))
        lang = "ja" if rng.random() < 0.6 else "en"
        requester = f"customer{cid}@example.{'jp' if lang == 'ja' else 'com'}"
        cases.append({
            "id": cid, "ref": ref, "status": status, "kinds": kinds, "requester": requester,
            "requester_name": f"Customer {cid}", "language": lang, "subject": f"Request {cid}",
            "flags": "dmarc_fail" if rng.random() < 0.01 else "", "opened_at": opened,
            "documents_received_at": docs, "due_at": due, "responded_at": responded, "closed_at": closed,
            "updated_at": closed or responded or docs or opened, "acknowledged_at": opened,
        })
        mid = f"<case-{cid}@customer.test>"
        ack = f"<{ref}.ack@bot.test>"
        messages.append({"case_id": cid, "direction": "in", "message_id": mid, "from_addr": requester,
                         "to_addr": "privacy@bot.test", "subject": f"Request {cid}", "recorded_at": opened,
                         "kinds": kinds, "language": lang, "action": "new_case", "size": 2000,
                         "mailbox_uid": cid})
        outbox.append({"case_id": cid, "purpose": "ack", "message_id": ack, "to_addr": requester,
                       "automatic": True, "raw": b"X" * 300, "status": "sent", "attempts": 1,
                       "next_attempt_at": opened, "created_at": opened, "sent_at": opened, "last_error": ""})
        events.append({"case_id": cid, "at": opened, "actor": "bot", "kind": "opened", "detail": f"kinds={kinds}"})
    for q in range(max(1, count // 200)):
        messages.append({"case_id": None, "direction": "in", "message_id": f"<q-{q}@x.test>",
                         "from_addr": f"odd{q}@example.net", "to_addr": "privacy@bot.test", "subject": "",
                         "recorded_at": now - timedelta(hours=rng.randint(1, 24 * 60)), "kinds": "",
                         "language": "", "action": "quarantined", "reason": "parse error: no usable text",
                         "size": 900, "mailbox_uid": count + q})
    with engine.begin() as conn:
        for table, rows in ((CaseRow, cases), (MessageRow, messages), (OutboxRow, outbox), (EventRow, events)):
            for i in range(0, len(rows), 10_000):
                conn.execute(insert(table), rows[i : i + 10_000])
        conn.execute(insert(CounterRow), [{"name": f"ref:PRV:{y}", "value": v} for y, v in per_year.items()])
        if engine.dialect.name == "postgresql":  # explicit ids: move the sequence past them
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('cases', 'id'), (SELECT max(id) FROM cases))")
    engine.dispose()
    return time.monotonic() - t0


def _wall(config: Path, *args: str, timeout: float) -> tuple[float | None, int, int]:
    """Wall time of `run_bot.py --config X ARGS` as a subprocess (None: killed after `timeout`)."""
    t0 = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config), *args],
                              cwd=ROOT, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, 0, 0
    elapsed = time.monotonic() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed, len(done.stdout), done.stdout.count(b"\n")


def _probe(config: Path, *args: str, timeout: float, profile: int = 0) -> dict[str, Any]:
    """bench.viewprobe in a child: one cli.main() call timed after imports, optionally profiled."""
    cmd = [sys.executable, "-m", "bench.viewprobe", "--timeout", str(timeout), "--profile", str(profile),
           "--", "--config", str(config), *args]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"viewprobe {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(ctx: Context) -> list[Row]:
    n = ctx.args.cases
    if n <= 0:
        return []
    limit = ctx.args.view_timeout
    url = ctx.dbs.new("staff")
    now = datetime.now(UTC)
    t_build = build(url, n, ctx.args.seed, now)
    config, _ = ctx.config("staff", db_url=url)
    rows = [Row(SECTION, "cases bulk-inserted", n, "cases",
                note=f"built in {t_build:.1f} s (+ message, outbox, event each)")]
    base, _, _ = _wall(config, "config", "show", timeout=120)
    rows.append(Row(SECTION, "baseline: `config show` wall (start-up)", base, "s"))
    views = [("digest --print", ("digest", "--print")), ("cases list", ("cases", "list"))]
    profiles = ctx.shared.setdefault("profiles", {})
    target = f"< {TARGET_S:g} s"
    for label, args in views:
        # fresh processes, as staff start them: the first right after the build, then RUNS more; the median
        # is the figure (the first also pays for a WAL left by the bulk insert and for compiling templates)
        first, size, lines = _wall(config, *args, timeout=limit)
        walls: list[float | None] = [first]
        if first is not None:
            walls += [_wall(config, *args, timeout=limit)[0] for _ in range(RUNS)]
        wall = None if None in walls else statistics.median(w for w in walls if w is not None)
        if wall is None:
            rows.append(Row(SECTION, f"`{label}` wall (subprocess)", f"> {limit:.0f}", "s", target, False,
                            f"killed after {limit:.0f} s (--view-timeout)"))
        else:
            spread = ", ".join(f"{w:.2f}" for w in walls if w is not None)
            rows.append(Row(SECTION, f"`{label}` wall (subprocess, median of {len(walls)})", wall, "s", target,
                            wall < TARGET_S, f"{size / 1024:,.0f} KiB, {lines:,} lines; runs {spread} s"))
            got = _probe(config, *args, timeout=limit)
            value = f"> {limit:.0f}" if got["timed_out"] else got["seconds"]
            rows.append(Row(SECTION, f"`{label}` in process (cli.main after imports)", value, "s", target,
                            not got["timed_out"] and got["seconds"] < TARGET_S))
        if wall is None or wall >= TARGET_S or ctx.args.profile:
            got = _probe(config, *args, timeout=limit, profile=15)
            cut = f", stopped after {limit:.0f} s" if got["timed_out"] else ""
            profiles[f"`{label}` over {n:,} cases (cProfile in process{cut}; top 15 cumulative)"] = got["profile"]
    return rows
