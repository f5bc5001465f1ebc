"""`web [--host H] [--port P]`: the staff console, until stopped."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from bot.core.errors import ConfigError
from bot.settings import Settings, check_web

log = logging.getLogger("bot")


def handle(args: argparse.Namespace, settings: Settings, _hooks: Any) -> int:
    problems = check_web(settings)
    if problems:
        raise ConfigError("; ".join(problems))
    from bot.adapters.store.engine import make_engine
    from bot.web.server import serve

    host = args.host or settings.web.host
    port = args.port if args.port is not None else settings.web.port
    if not 0 < port < 65536:
        raise ConfigError(f"--port {port}: use 1-65535")
    engine = make_engine(settings.database.url)
    log.info("staff console on http://%s:%s/ (session cookie %s)", host, port,
             "Secure" if settings.web.secure_cookie else "not Secure: loopback only")
    serve(settings, engine, host=host, port=port)
    return 0
