"""`run` and `run --once`."""

from __future__ import annotations

import argparse
import logging
import signal
from types import FrameType
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.cli import Hooks

log = logging.getLogger("bot")


def handle(args: argparse.Namespace, settings: Settings, hooks: Hooks) -> int:
    from bot.app.service import Bot

    bot = Bot(settings, after_record=hooks.after_record)
    try:
        if args.once:
            outcomes = bot.run_once()
            log.info("run --once: %s new mail(s) taken in", len(outcomes))
            return 0

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping", signum)
            bot.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        server = None
        if settings.health.listen:
            from bot.app.health import HealthServer

            server = HealthServer(bot, settings.health.listen)
        try:
            bot.run()
        finally:
            if server is not None:
                server.close()
        return 0
    finally:
        bot.close()
