"""`config show`: the effective settings, secrets masked."""

from __future__ import annotations

import argparse
import json
from typing import Any

from bot.settings import Settings


def handle(args: argparse.Namespace, settings: Settings, _hooks: Any) -> int:
    print(json.dumps(settings.masked(), indent=2, ensure_ascii=False))
    return 0
