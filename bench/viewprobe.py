"""One staff view timed inside a Python process, optionally under cProfile, with a time limit.

    python -m bench.viewprobe --timeout 20 [--profile 15] -- --config X digest --print

Imports the CLI and what the view uses first, then times one `bot.cli.main(argv)` with its
output discarded. Prints JSON: {"seconds": s, "timed_out": bool, "profile": text}. On time-out
(SIGALRM) the profile still holds everything up to that moment.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import signal
import time


class _TimeUp(BaseException):
    pass


def _alarm(_signum: int, _frame: object) -> None:
    raise _TimeUp()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--profile", type=int, default=0, help="print this many top cumulative entries")
    p.add_argument("argv", nargs=argparse.REMAINDER)
    a = p.parse_args()
    argv = [x for x in a.argv if x != "--"] if a.argv and a.argv[0] == "--" else a.argv

    import rich.table  # noqa: F401

    import bot.cli
    import bot.core.digest
    import bot.staff.actions
    import bot.staff.views  # noqa: F401
    from bot.cli import main as cli_main

    prof = cProfile.Profile() if a.profile else None
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, a.timeout)
    timed_out = False
    t0 = time.monotonic()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            if prof is not None:
                prof.runcall(cli_main, argv)
            else:
                cli_main(argv)
    except _TimeUp:
        timed_out = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    elapsed = time.monotonic() - t0
    text = ""
    if prof is not None:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).strip_dirs().sort_stats("cumulative").print_stats(a.profile)
        text = out.getvalue()
    print(json.dumps({"seconds": elapsed, "timed_out": timed_out, "profile": text}))


if __name__ == "__main__":
    main()
