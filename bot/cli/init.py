"""`init DIR`: a folder for an admin to edit (SPEC section 8).

Writes DIR/bot.toml (the packaged example, commented, every key with its default; secrets empty,
to be set in BOT_... environment variables), DIR/templates/ (copies of the packaged templates),
DIR/rules.toml (a copy of the packaged rules) and DIR/systemd/ (the units of deploy/, with this
installation's paths). It never overwrites a file: when any of them exists it writes nothing and
names them. Then it prints the next steps.
"""

from __future__ import annotations

import argparse
import os
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.errors import BotError, UsageError

DEFAULT_DATA_DIR = "/var/lib/privacy-bot"
# The paths the units of deploy/ are written with; init puts this installation's in their place.
UNIT_PROGRAM = "/opt/privacy-bot/bin/privacy-bot"
UNIT_CONFIG_DIR = "/etc/privacy-bot"
UNIT_DATA_DIR = DEFAULT_DATA_DIR
UNITS = ("privacy-bot.service", "privacy-bot-web.service")

HEADER = """\
# Privacy mailbox bot: configuration, written by `privacy-bot init`.
#
# Use it with:  privacy-bot --config {config} COMMAND   (or set BOT_CONFIG={config})
# Every key is here with its default or an example value; delete what you do not change.
# Every key can be overridden by an environment variable BOT_<SECTION>__<KEY>. Secrets belong there,
# not in this file: put them in an environment file ({env}, mode 600) such as
#   BOT_MAILBOX__PASSWORD=...
#   BOT_SMTP__PASSWORD=...
#   BOT_DATABASE__URL=postgresql+psycopg://bot:...@db.example.com/privacy   (when the URL holds a password)
# which the systemd units read (EnvironmentFile=). `privacy-bot --config {config} config show` prints
# the effective settings with secrets masked. A missing or invalid key stops the bot at start-up
# (exit status 2) with a message naming the key.
# Relative paths ([paths], [sorter] model) are relative to this file's folder.
"""


class InitRefused(BotError):
    """init would overwrite a file: nothing was written."""


@dataclass(frozen=True)
class Plan:
    """Every file init writes, as (path, content)."""

    files: tuple[tuple[Path, bytes], ...]
    config: Path


def handle(args: argparse.Namespace, _settings: Any, _hooks: Any) -> int:
    target = Path(args.dir).expanduser().absolute()
    data_dir = Path(args.data_dir).expanduser().absolute()
    plan = plan_init(target, data_dir)
    write(plan)
    print(next_steps(plan, target, data_dir))
    return 0


def plan_init(target: Path, data_dir: Path) -> Plan:
    """What `init` writes into `target`, worked out before anything is written."""
    from bot.compose.templates import packaged_templates
    from bot.settings import packaged

    if target.exists() and not target.is_dir():
        raise UsageError(f"init: {target} exists and is not a folder")
    config = target / "bot.toml"
    files: list[tuple[Path, bytes]] = [(config, config_text(config, data_dir).encode("utf-8"))]
    templates = packaged_templates()
    for path in sorted(templates.rglob("*.j2")):
        files.append((target / "templates" / path.relative_to(templates), path.read_bytes()))
    files.append((target / "rules.toml", packaged("rules.toml").read_bytes()))
    program = Path(sysconfig.get_path("scripts")) / "privacy-bot"
    for unit in UNITS:
        files.append((target / "systemd" / unit, unit_text(unit, program, target, data_dir).encode("utf-8")))
    return Plan(tuple(files), config)


def write(plan: Plan) -> None:
    """Write every file of the plan, or none when any of them exists (naming them)."""
    there = [path for path, _ in plan.files if path.exists() or path.is_symlink()]
    if there:
        shown = ", ".join(str(p) for p in there[:5]) + (f" and {len(there) - 5} more" if len(there) > 5 else "")
        raise InitRefused(f"init: would overwrite {shown}: nothing written (move them away or choose another folder)")
    for path, content in plan.files:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = 0o640 if path == plan.config else 0o644  # the config may name hosts and users; secrets go elsewhere
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # O_EXCL: never over a file made meanwhile
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)


def config_text(config: Path, data_dir: Path) -> str:
    """The packaged example config with this folder's paths: templates/ and rules.toml beside it, the
    SQLite database in `data_dir`."""
    from bot.settings import packaged

    example = packaged("bot.example.toml").read_text(encoding="utf-8")
    body = example[example.index("\n[") + 1:]  # the example's own header is about the checkout
    body = _set(body, "paths", "templates", '"templates"',
                "your templates: a file here replaces the packaged one of the same name;",
                "delete the ones you keep as they are: they then come from the package (and",
                "get its updates). `templates check` lists where each template comes from")
    body = _set(body, "paths", "rules", '"rules.toml"', "the sorting rules (a copy of the packaged ones)")
    body = _set(body, "database", "url", f'"sqlite:///{data_dir / "bot.db"}"',
                "an absolute path: the same database from any working directory;",
                "or postgresql+psycopg://user@host/dbname (password in BOT_DATABASE__URL)")
    return HEADER.format(config=config, env=config.parent / "env") + "\n" + body


COMMENT_AT = 32  # the column the example's comments start at


def _set(text: str, section: str, key: str, value: str, *comment: str) -> str:
    """`key = value  # comment` in [section] of a TOML text, in place of the key's line and its
    comment lines; the key must be there."""
    start = text.index(f"[{section}]")
    end = text.find("\n[", start)
    end = len(text) if end < 0 else end
    line = f"{key} = {value}"
    lines = [f"{line:<{COMMENT_AT - 1}} # {comment[0]}", *(f"{'':<{COMMENT_AT}}# {more}" for more in comment[1:])]
    part, count = re.subn(rf"(?m)^{re.escape(key)} = .*\n(?:[ \t]+#.*\n)*", "\n".join(lines) + "\n",
                          text[start:end], count=1)
    if not count:
        raise BotError(f"init: the packaged example config has no {section}.{key}")  # a packaging mistake
    return text[:start] + part + text[end:]


UNIT_HEADER = """\
# Written by `privacy-bot init` for this installation: the program {program}, the config
# {config}, secrets in {env} (mode 600), data in {data}.
# Install:  cp {unit_path} /etc/systemd/system/ && systemctl daemon-reload
# Before the first start and after each upgrade of the package:  {program} --config {config} db upgrade
"""


def unit_text(unit: str, program: Path, config_dir: Path, data_dir: Path) -> str:
    """A unit of deploy/ with this installation's program, config folder and data folder."""
    from bot.settings import packaged

    text = packaged(f"systemd/{unit}").read_text(encoding="utf-8")
    text = text[text.index("[Unit]"):]  # its comment is about editing the paths by hand
    for written, actual in ((UNIT_PROGRAM, str(program)), (UNIT_CONFIG_DIR, str(config_dir)),
                            (UNIT_DATA_DIR, str(data_dir))):
        text = text.replace(written, actual)
    return UNIT_HEADER.format(program=program, config=config_dir / "bot.toml", env=config_dir / "env",
                              data=data_dir, unit_path=config_dir / "systemd" / unit) + "\n" + text


def next_steps(plan: Plan, target: Path, data_dir: Path) -> str:
    templates = sum(1 for path, _ in plan.files if "templates" in path.relative_to(target).parts)
    cmd = f"privacy-bot --config {plan.config}"
    env = target / "env"
    return f"""\
Wrote {plan.config}, {target / "templates"}/ ({templates} templates), {target / "rules.toml"} and \
{target / "systemd"}/ ({", ".join(UNITS)}).

Next steps:
  1. Edit {plan.config}: [mailbox], [smtp], [staff] digest_recipients, [policy] postal_address and
     company_name at least.
  2. Secrets go in an environment file, not in bot.toml: {env} (chmod 600), e.g.
       BOT_MAILBOX__PASSWORD=...
       BOT_SMTP__PASSWORD=...
     The systemd units read it; for a shell:  set -a; . {env}; set +a
  3. Edit the templates you want to change in {target / "templates"}/ and delete the others (they then
     come from the package). See where each comes from and that all render:
       {cmd} templates check
  4. Create or upgrade the database ({data_dir} must exist and be writable for SQLite):
       {cmd} db upgrade
  5. Run it under systemd (the units name this installation's program and folders; they run as the
     user privacy-bot, read secrets from {env} and may write only to {data_dir}):
       useradd --system --home-dir {data_dir} --shell /usr/sbin/nologin privacy-bot
       chgrp -R privacy-bot {target}
       cp {target / "systemd"}/*.service /etc/systemd/system/
       systemctl daemon-reload && systemctl enable --now privacy-bot.service
       journalctl -u privacy-bot.service -f
  6. Watch its health: set [health] listen = "127.0.0.1:9464" in {plan.config}; `run` then serves
     /healthz (503 when the mailbox or the database is not reached) and /metrics for Prometheus:
       curl -fsS http://127.0.0.1:9464/healthz"""
