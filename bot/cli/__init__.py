"""Command line: `python run_bot.py [--config PATH] COMMAND ...` (SPEC section 2).

Only this package decides exit codes: 0 done, 1 failed, 2 bad usage or bad config. Results go to
standard output, logs to standard error. Each command group is a module here (`run`, `cases`,
`digest`, `templates`, `config`, `demo`, `init`, `users`, `web`, `db`...) with `add(subparsers)` and `handle(args, settings, hooks)`;
a module is imported only when its command runs, so staff commands start fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.core.errors import BotError, ConfigError, UsageError

if TYPE_CHECKING:
    from bot.app.service import AfterRecord

log = logging.getLogger("bot")


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # exit 2 with one line, as argparse does, but via UsageError
        raise UsageError(f"{self.prog}: {message}")


@dataclass(frozen=True)
class Hooks:
    """Seams for whoever embeds the command line: called by `run` with each recorded mail."""

    after_record: AfterRecord | None = None


# command -> module of bot.cli that parses and runs it; parsers are declared in bot.cli.commands
COMMANDS = {"run": "run", "cases": "cases", "templates": "templates", "digest": "digest", "config": "config",
            "demo": "demo", "users": "users", "web": "web", "rules": "rules", "sorter": "sorter", "init": "init",
            "db": "db"}
# Commands that never read a config file.
CONFIG_NONE = frozenset({"demo", "init"})
# Commands that work without a config file (the shipped rules and model), and read one when it exists.
CONFIG_OPTIONAL = frozenset({"rules", "sorter"})


def build_parser() -> argparse.ArgumentParser:
    from bot.cli.commands import add_commands

    p = Parser(prog="run_bot.py", description="Privacy mailbox bot")
    p.add_argument("--config", help="config file (default: $BOT_CONFIG or config/bot.toml)")
    add_commands(p.add_subparsers(dest="command", required=True, parser_class=Parser))
    return p


def main(argv: Sequence[str] | None = None, *, hooks: Hooks = Hooks()) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _configure_logging("INFO")
    try:
        module = importlib.import_module(f"bot.cli.{COMMANDS[args.command]}")
        if args.command in CONFIG_NONE:
            return int(module.handle(args, None, hooks))
        from bot.settings import config_path, load_settings

        path = config_path(args.config)
        if args.command in CONFIG_OPTIONAL and not args.config and not path.is_file():
            return int(module.handle(args, None, hooks))
        settings = load_settings(path)
        logging.getLogger().setLevel(settings.log.level)
        return int(module.handle(args, settings, hooks))
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# Anything that looks like a mail address: some text, @, a domain (dotted or not, any script) or [literal]
ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"'@]+@(?:\[[^\]\s]*\]|[^\s<>()\[\]\\,;:\"'@]+)")
MASK = "<address>"


class MaskingFormatter(logging.Formatter):
    """The second line of defence (the first: no log call formats an address, a subject, a body or an
    error's SQL parameters): whatever a record turns into, traceback included, leaves with every
    address-like text replaced by <address>."""

    def format(self, record: logging.LogRecord) -> str:
        return ADDRESS.sub(MASK, super().format(record))


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])  # (a no-op when the embedding program has set up logging)
    # (msal, google.auth and urllib3 would log token requests at DEBUG; tokens never go to the log)
    for noisy in ("imapclient", "apscheduler", "mail.log", "aiosmtplib", "msal", "google", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
