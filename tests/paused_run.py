"""The command line, stopped for good right after a mail with a reply was recorded and before the
reply is sent (the crash-safety test then kills it): `python -m tests.paused_run MARKER ARGS...`.

It uses the command line's `after_record` hook; the bot itself knows nothing of this."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

from bot.app.intake import Outcome
from bot.cli import Hooks, main


def pause_after_reply(marker: Path) -> Hooks:
    def after(outcome: Outcome) -> None:
        if outcome.replied:
            marker.write_text(outcome.ref)
            threading.Event().wait()  # forever: the test kills the process here

    return Hooks(after_record=after)


if __name__ == "__main__":
    marker, *argv = sys.argv[1:]
    sys.exit(main(argv, hooks=pause_after_reply(Path(marker))))
