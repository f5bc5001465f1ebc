"""`demo`: the whole bot here, on its own servers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bot.core.errors import BotError


def handle(args: argparse.Namespace, _settings: None, _hooks: Any) -> int:
    try:
        from bot.demo import run_demo
    except ImportError as exc:  # the embedded servers are an extra
        raise BotError(f"demo needs its embedded servers ({exc.name} is missing): "
                       "pip install 'privacy-mailbox-bot[demo]'") from None
    return run_demo(Path(args.dir), exit_after=args.exit_after, web_port=args.web_port)
