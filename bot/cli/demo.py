"""`demo`: the whole bot here, on its own servers."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def handle(args: argparse.Namespace, _settings: None, _hooks: Any) -> int:
    from bot.demo import run_demo

    return run_demo(Path(args.dir), exit_after=args.exit_after)
