"""The benchmark: `.venv/bin/python -m bench.run [options]` (or `make bench BENCH_ARGS="..."`).

Starts its own Dovecot and aiosmtpd sink on loopback (tests.mailservers), runs the bot as a
subprocess against a fresh database per measurement, and prints one table of figures measured
in this run, with the machine and the exact command above it. The table also goes to
bench/results/latest.json.

Sections run in the order of SECTIONS; each is a function (Context) -> list[Row]. To add one
(e.g. scale-out with one and two workers), write such a function in its own module and append
it to SECTIONS; a section may read what an earlier one left in ctx.shared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import console, drain, latency, memory, scaleout, staff_views
from bench.harness import Context, Databases, Row, command_line, machine, render_table, servers

Section = Callable[[Context], list[Row]]

SECTIONS: list[tuple[str, Section]] = [
    ("latency", latency.run),  # 1. reply latency under IDLE vs a bare IDLE listener
    ("drain", drain.run),  # 2. backlog drain vs raw FETCH + SMTP
    ("memory", memory.run),  # 3. peak RSS: drain, 25 MB attachment, restart over old mail (uses drain's run)
    ("staff", staff_views.run),  # 4. digest --print and cases list over many cases
    ("scale", scaleout.run),  # 5. one and two `run` processes on PostgreSQL, and a killed leader
    ("console", console.run),  # 6. the staff console's queue, case list and case page over --cases cases
]

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite",
                   help="temp SQLite file, or a fresh database on the PostgreSQL at 127.0.0.1:5432 (user postgres)")
    p.add_argument("--sections", default=",".join(name for name, _ in SECTIONS),
                   help="comma-separated subset of: " + ", ".join(name for name, _ in SECTIONS))
    p.add_argument("--latency", type=int, default=200, metavar="N", help="inquiries appended one at a time under IDLE")
    p.add_argument("--gap-min", type=int, default=50, metavar="MS", help="shortest random gap between appends")
    p.add_argument("--gap-max", type=int, default=300, metavar="MS", help="longest random gap between appends")
    p.add_argument("--stragglers", type=int, default=3, metavar="K",
                   help="tries of a mail landing while the bot is busy with another, then silence")
    p.add_argument("--straggler-wait", type=float, default=5.0, metavar="S", help="how long each straggler may take")
    p.add_argument("--drain", type=int, default=2000, metavar="M", help="backlog waiting before `run --once` starts")
    p.add_argument("--attachment-mb", type=int, default=25, metavar="MB", help="size of the one big attachment (0: skip)")
    p.add_argument("--attachment-backlog", type=int, default=200, metavar="K",
                   help="ordinary inquiries around the big one")
    p.add_argument("--big-mailbox", type=int, default=20_000, metavar="N",
                   help="old, processed mails in the mailbox for the restart measurement (0: skip)")
    p.add_argument("--scale", type=int, default=1000, metavar="M",
                   help="backlog for the scale-out runs (one worker, two workers, two with the leader killed)")
    p.add_argument("--cases", type=int, default=100_000, metavar="N", help="cases built for the staff views")
    p.add_argument("--console-requests", type=int, default=20, metavar="N",
                   help="requests per console page (after one warm-up)")
    p.add_argument("--view-timeout", type=float, default=20.0, metavar="S",
                   help="a staff view still running after this many seconds is stopped and reported as over")
    p.add_argument("--profile", action="store_true",
                   help="also drain the backlog once more under cProfile and print the top entries "
                        "(and profile the staff views even when fast)")
    p.add_argument("--seed", type=int, default=1, help="seed for the random gaps and the case mix")
    p.add_argument("--workdir", type=Path, help="where servers and databases live (default: a temp dir, removed)")
    p.add_argument("--json", type=Path, default=RESULTS / "latest.json", help="where the results go")
    return p.parse_args(argv)


def profile_drain(ctx: Context) -> list[Row]:
    """`run --once` on a fresh backlog under cProfile; the top entries go below the table."""
    import io
    import pstats

    m = ctx.args.drain
    drain.fill_backlog(ctx, m, start=800_000)
    out = ctx.workdir / "drain.prof"
    _bot, elapsed, _ = drain.drain(ctx, "profile", python_args=("-m", "cProfile", "-o", str(out)))
    text = io.StringIO()
    stats = pstats.Stats(str(out), stream=text)
    stats.strip_dirs().sort_stats("cumulative").print_stats(15)
    text.write("\n--- by internal time (tottime) ---\n")
    stats.sort_stats("tottime").print_stats(15)
    ctx.shared.setdefault("profiles", {})[f"run --once over {m:,} waiting inquiries (cProfile, top 15)"] = text.getvalue()
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(out, RESULTS / "drain.prof")
    return [Row("profile", "run --once under cProfile: start to last reply", elapsed, "s",
                note="profiler overhead included; not comparable with section 2")]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(wanted) - {name for name, _ in SECTIONS}
    if unknown:
        print(f"error: unknown section(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    started = datetime.now(UTC)
    t0 = time.monotonic()
    info = machine()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bot-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    dbs = Databases(args.db, workdir)
    info["database"] = dbs.server_version()
    header = [
        "privacy-mailbox bot benchmark",
        f"  command:  {command_line()}",
        f"  when:     {started:%Y-%m-%d %H:%M:%S} UTC",
        f"  machine:  {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, Linux {info['kernel']}",
        f"  software: {info['python']}, Dovecot {info['dovecot']}, {info['database']} (bot database)",
        f"  code:     {info['code']}",
    ]
    print("\n".join(header), flush=True)
    rows: list[Row] = []
    errors: list[str] = []
    chosen = [(n, f) for n, f in SECTIONS if n in wanted]
    if args.profile:
        chosen.append(("profile", profile_drain))
    try:
        with servers(workdir) as (dovecot, sink):
            ctx = Context(args=args, workdir=workdir, dovecot=dovecot, sink=sink, dbs=dbs)
            for name, section in chosen:
                s0 = time.monotonic()
                print(f"... {name}", file=sys.stderr, flush=True)
                try:
                    got = section(ctx)
                except Exception as exc:
                    traceback.print_exc()
                    errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    got = [Row(name, "section failed", None, note=f"{type(exc).__name__}: {str(exc)[:120]}", met=False)]
                rows += got
                print(f"... {name} done in {time.monotonic() - s0:.0f} s", file=sys.stderr, flush=True)
            profiles: dict[str, str] = ctx.shared.get("profiles", {})
    finally:
        dbs.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - t0
    print()
    print(render_table(rows))
    targets = [r for r in rows if r.met is not None]
    print(f"\n{sum(1 for r in targets if r.met)} of {len(targets)} targets met; whole run {total:.0f} s")
    for title, text in profiles.items():
        print(f"\n=== profile: {title}\n{text.rstrip()}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "command": command_line(), "started": started.isoformat(), "seconds": round(total, 1),
        "machine": info, "args": {k: str(v) for k, v in vars(args).items()},
        "rows": [r.as_dict() for r in rows], "errors": errors, "profiles": profiles,
    }, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults written to {args.json}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
