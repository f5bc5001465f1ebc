"""One typed settings object: TOML file, overridden by BOT_<SECTION>__<KEY> environment variables.

Loaded and checked once at start-up by `load_settings`; any problem is a ConfigError naming the key.
The environment is laid over the file here (`with_environment`) rather than by pydantic-settings,
whose import alone (its secret-store sources, asyncio) cost staff commands 0.1 s at every start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.core.errors import ConfigError
from bot.settings.checks import MIN_SECRET_KEY, check_together, check_web
from bot.settings.files import (
    default_model_path,
    default_rules_path,
    load_model,
    load_rules,
    packaged,
    rules_path,
    sorter_model,
)
from bot.settings.sections import (
    DatabaseSettings,
    HealthSettings,
    LogSettings,
    MailboxSettings,
    OAuth2Settings,
    PathSettings,
    PolicySettings,
    Security,
    SmtpSettings,
    SorterSettings,
    StaffSettings,
    WebSettings,
    listen_address,
)
from bot.settings.toml import read_toml

if TYPE_CHECKING:
    from bot.core.clock import Calendar
    from bot.core.followups import FollowupPolicy
    from bot.core.lifecycle import CasePolicy
    from bot.core.model import Sender

DEFAULT_CONFIG = Path("config/bot.toml")
ENV_PREFIX = "BOT_"
ENV_DELIMITER = "__"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mailbox: MailboxSettings
    smtp: SmtpSettings
    database: DatabaseSettings = DatabaseSettings()
    staff: StaffSettings = StaffSettings()
    policy: PolicySettings
    paths: PathSettings = PathSettings()
    sorter: SorterSettings = SorterSettings()
    log: LogSettings = LogSettings()
    web: WebSettings = WebSettings()
    oauth2: OAuth2Settings = OAuth2Settings()
    health: HealthSettings = HealthSettings()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.policy.timezone)

    @property
    def calendar(self) -> Calendar:
        from bot.core.clock import Calendar

        return Calendar(self.zone, self.policy.day_count == "business", tuple(self.policy.closures))

    @property
    def sender(self) -> Sender:
        """Who the bot's mail comes from."""
        from bot.core.model import Sender

        return Sender(self.smtp.from_address, self.smtp.from_name, self.smtp.japanese_charset)

    @property
    def case_policy(self) -> CasePolicy:
        from bot.core.lifecycle import CasePolicy

        return CasePolicy(self.policy.response_days, self.zone, self.calendar)

    @property
    def followup_policy(self) -> FollowupPolicy:
        from bot.core.followups import FollowupPolicy

        return FollowupPolicy(tuple(self.policy.reminder_days), self.policy.abandon_days)

    @property
    def own_addresses(self) -> frozenset[str]:
        """The bot's own addresses: mail from them is never answered."""
        return frozenset(a.lower() for a in (self.smtp.from_address, self.mailbox.username) if "@" in a)

    def masked(self) -> dict[str, Any]:
        """The settings as plain data with every secret replaced by '***'."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for section in ("mailbox", "smtp"):
            if data[section].get("password"):
                data[section]["password"] = "***"
        if data["web"].get("secret_key"):
            data["web"]["secret_key"] = "***"
        data["database"]["url"] = _mask_url(data["database"]["url"])
        for key in ("client_secret", "refresh_token"):
            if data["oauth2"].get(key):
                data["oauth2"][key] = "***"
        return data


def _mask_url(url: str) -> str:
    head, sep, tail = url.partition("://")
    if sep and "@" in tail:
        creds, _, host = tail.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{head}://{user}:***@{host}" if ":" in creds else url
    return url


def config_path(cli_value: str | None) -> Path:
    return Path(cli_value or os.environ.get("BOT_CONFIG") or DEFAULT_CONFIG)


def with_environment(data: Mapping[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """The file's settings with every BOT_<SECTION>__<KEY> variable laid over them (the environment
    wins). Names are case-insensitive; a value starting with [ or { is read as JSON, so a list key can
    be set as BOT_STAFF__DIGEST_RECIPIENTS='["dpo@example.com"]'. Other BOT_ variables (no "__") are
    not settings. `data` is not changed."""
    merged: dict[str, Any] = dict(data)
    for name, value in environ.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or ENV_DELIMITER not in upper:
            continue
        path = upper[len(ENV_PREFIX):].lower().split(ENV_DELIMITER)
        if not all(path):
            continue
        node = merged
        for part in path[:-1]:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, Mapping) else {}
            node = child
        node[path[-1]] = _env_value(value)
    return merged


def _env_value(value: str) -> Any:
    if value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            pass  # a string that happens to start so: pydantic says whether the key takes it
    return value


def load_settings(path: Path, environ: Mapping[str, str] | None = None) -> Settings:
    """The config file at `path` with the environment (`os.environ` unless given) laid over it, checked."""
    data = read_toml(path, "config file", "use --config PATH or BOT_CONFIG")
    try:
        settings = Settings(**with_environment(data, os.environ if environ is None else environ))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    problems = check_together(settings)
    if problems:
        raise ConfigError("; ".join(f"{p} [file {path}]" for p in problems))
    return anchor_paths(settings, path.parent)


def anchor_paths(settings: Settings, folder: Path) -> Settings:
    """The settings with relative file keys (paths.templates, paths.rules, sorter.model) made absolute
    against `folder`, the config file's: the same files whatever the working directory (systemd: /)."""

    def anchored(value: str) -> str:
        given = Path(value).expanduser()
        return os.path.normpath(given if given.is_absolute() else folder.absolute() / given) if value else value

    return settings.model_copy(update={
        "paths": settings.paths.model_copy(update={"templates": anchored(settings.paths.templates),
                                                   "rules": anchored(settings.paths.rules)}),
        "sorter": settings.sorter.model_copy(update={"model": anchored(settings.sorter.model)}),
    })


def _describe(exc: ValidationError, path: Path) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        env = "BOT_" + "__".join(str(p).upper() for p in err["loc"])
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known key"
        shown = "" if any(w in key for w in ("password", "secret", "token")) or err["type"] in ("missing", "extra_forbidden") else f" (got {err.get('input')!r})"
        lines.append(f"config key {key} {msg}{shown} [file {path}, or {env}]")
    return "; ".join(lines)


__all__ = [
    "DEFAULT_CONFIG", "MIN_SECRET_KEY", "DatabaseSettings", "HealthSettings", "LogSettings", "MailboxSettings",
    "OAuth2Settings", "PathSettings", "PolicySettings", "Security", "Settings", "SmtpSettings", "SorterSettings",
    "StaffSettings", "WebSettings", "anchor_paths", "check_together", "check_web", "config_path",
    "default_model_path", "default_rules_path", "listen_address", "load_model", "load_rules", "load_settings",
    "packaged", "read_toml", "rules_path", "sorter_model", "with_environment",
]
