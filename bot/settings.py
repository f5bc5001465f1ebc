"""One typed settings object: TOML file, overridden by BOT_<SECTION>__<KEY> environment variables.

Loaded and checked once at start-up by `load_settings`; any problem is a ConfigError naming the key.
"""

from __future__ import annotations

import os
import tomllib
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.core.classify.rules import Rules, rules_from_data
from bot.core.classify.scorer import Model, model_from_data
from bot.core.errors import ConfigError

if TYPE_CHECKING:
    from bot.core.clock import Calendar
    from bot.core.followups import FollowupPolicy
    from bot.core.lifecycle import CasePolicy
    from bot.core.model import Sender

DEFAULT_CONFIG = Path("config/bot.toml")
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
Security = Literal["ssl", "starttls", "none"]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MailboxSettings(Section):
    host: str
    port: int = Field(993, ge=1, le=65535)
    security: Security = "ssl"
    username: str
    password: SecretStr = SecretStr("")
    auth: Literal["password", "oauth2"] = "password"  # oauth2: SASL XOAUTH2/OAUTHBEARER with a token from [oauth2]
    folder: str = "INBOX"
    tls_verify: bool = True  # turn off only for a test server with a self-signed certificate
    ca_file: str = ""  # extra CA bundle to trust (e.g. a private CA)
    processed_folder: str = ""  # move processed mail here; "" keeps it in `folder` (marked \Seen)
    first_start: Literal["unseen", "all", "new"] = "unseen"
    idle_renew_seconds: int = Field(5 * 60, ge=10, le=29 * 60)  # ends with a pass: bounds a missed notification
    poll_seconds: int = Field(60, ge=1)  # used when the server lacks IDLE
    max_message_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    fetch_batch: int = Field(200, ge=1, le=5000)
    timeout_seconds: float = Field(60.0, gt=0)
    reconnect_max_seconds: float = Field(60.0, gt=0)
    burst_seconds: float = Field(0.6, ge=0)  # after a pass that took in mail, poll this long before IDLE
    follower_seconds: float = Field(1.0, gt=0)  # a process that does not lead sends and retries leading this often


class SmtpSettings(Section):
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Security = "starttls"
    username: str = ""
    password: SecretStr = SecretStr("")
    auth: Literal["password", "oauth2", "none"] = "password"  # password: AUTH only when username is set
    from_address: str
    from_name: str = "Privacy Office"
    tls_verify: bool = True
    ca_file: str = ""
    timeout_seconds: float = Field(30.0, gt=0)
    connections: int = Field(4, ge=1, le=32)
    max_attempts: int = Field(10, ge=1)
    retry_base_seconds: float = Field(30.0, gt=0)
    japanese_charset: Literal["utf-8", "iso-2022-jp"] = "utf-8"


class DatabaseSettings(Section):
    url: str = "sqlite:///data/bot.db"
    keep_bodies: bool = False  # store the text of inbound mail (off: ids, dates and kinds only)
    retention_days: int = Field(default=0, ge=0)  # purge personal data of cases closed this long ago (0: never)


class StaffSettings(Section):
    digest_recipients: list[str] = Field(default_factory=list)
    digest_time: time = time(9, 0)
    language: Literal["en", "ja"] = "en"


class PolicySettings(Section):
    timezone: str = "Asia/Tokyo"
    response_days: int = Field(14, ge=1, le=365)
    postal_address: str
    max_auto_replies_per_sender_per_day: int = Field(3, ge=0)
    company_name: str = "the Company"
    ref_prefix: str = Field("PRV", pattern=r"^[A-Z]{2,8}$")
    reminder_days: list[int] = Field(default_factory=lambda: [14, 28])  # after the form was sent
    abandon_days: int = Field(60, ge=1)  # no documents by then: the case is closed as abandoned
    sweep_seconds: int = Field(60, ge=5)  # how often `run` looks for due follow-ups
    ack_target_hours: int = Field(1, ge=1)  # the first acknowledgement is late after this
    day_count: Literal["calendar", "business"] = "calendar"
    closures: list[str] = Field(default_factory=list)  # yearly company closures, e.g. ["12-29..01-03"]

    @field_validator("closures")
    @classmethod
    def _closures(cls, value: list[str]) -> list[str]:
        from bot.core.clock import parse_closure

        for spec in value:
            parse_closure(spec)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class OAuth2Settings(Section):
    """Where the access tokens for mailbox.auth / smtp.auth = "oauth2" come from (SPEC section 7)."""

    provider: Literal["microsoft", "google", "generic"] = "generic"
    tenant: str = ""  # microsoft: the directory (tenant) id
    token_url: str = ""  # generic; for microsoft/google it overrides the provider's token endpoint
    client_id: str = ""
    client_secret: SecretStr = SecretStr("")  # BOT_OAUTH2__CLIENT_SECRET
    refresh_token: SecretStr = SecretStr("")  # BOT_OAUTH2__REFRESH_TOKEN; empty: client credentials grant
    scope: str = ""  # empty: the provider's usual scope
    ca_file: str = ""  # extra CA to trust for the token endpoint (private PKI, tests)
    service_account_file: str = ""  # google: a service account's JSON key (domain-wide delegation)
    subject: str = ""  # google service account: the mailbox to act as (empty: mailbox.username)
    renew_before_seconds: int = Field(default=300, ge=0)  # renew a token this long before it expires (at most half its life)
    timeout_seconds: float = Field(default=30.0, gt=0)


class HealthSettings(Section):
    listen: str = ""  # e.g. "127.0.0.1:9464": `run` serves /healthz and /metrics there; empty: off

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        if value:
            listen_address(value)
        return value


def listen_address(value: str) -> tuple[str, int]:
    """ "host:port" (or "[::1]:port") as (host, port); ValueError when it is not one."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:9464)")
    return host.strip("[]"), int(port)


class PathSettings(Section):
    # "" is what the package ships; a relative path is relative to the config file's folder.
    templates: str = ""  # an admin's templates folder: its files win over the packaged ones, file by file
    rules: str = ""  # an admin's rule file, used instead of the packaged one


class WebSettings(Section):
    """The staff console (`web`, SPEC section 6)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    secret_key: SecretStr = SecretStr("")  # BOT_WEB__SECRET_KEY; signs the session cookies; required by `web`
    public_url: str = ""  # e.g. https://privacy-console.example.com (links in digests; https: Secure cookie)
    session_minutes: int = Field(default=480, ge=5, le=7 * 24 * 60)
    language: Literal["ja", "en"] = "ja"
    page_size: int = Field(default=50, ge=10, le=500)  # cases per page of /cases
    forwarded_allow_ips: str = "127.0.0.1"  # reverse proxies whose X-Forwarded-* headers are believed

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// (or http://)")
        return value.rstrip("/")

    @property
    def secure_cookie(self) -> bool:
        """The session cookie is Secure unless the console is served on loopback only (and not
        published at an https:// address, as behind a TLS reverse proxy on the same machine)."""
        return self.public_url.startswith("https://") or self.host.strip("[]").lower() not in _LOOPBACK


class SorterSettings(Section):
    model: str = ""  # the sorter's model file; "" is the one shipped in the package
    use_model: bool = True  # false: the rule file alone sorts (no confidence, nothing is "unsure")
    keep_correction_text: bool = True  # keep the inquiry's own words with a staff correction (when bodies are kept)


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

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

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, which arrives as init arguments.
        return env_settings, init_settings

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


def read_toml(path: Path, what: str, missing_hint: str) -> dict[str, Any]:
    """A TOML file as data; any problem is a ConfigError naming the file."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} not found ({missing_hint})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc}") from None


def load_settings(path: Path) -> Settings:
    data = read_toml(path, "config file", "use --config PATH or BOT_CONFIG")
    try:
        settings = Settings(**data)
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


def check_together(s: Settings) -> list[str]:
    """What is wrong with several keys together (each key is fine on its own), naming every key
    involved; [] when nothing is. The model: aiosmtplib's `_validate_config`."""
    from email_validator import EmailNotValidError, validate_email

    problems: list[str] = []
    for name, section in (("mailbox", s.mailbox), ("smtp", s.smtp)):
        if section.security == "none":
            if section.password.get_secret_value() and section.host.lower() not in _LOOPBACK:
                problems.append(f"config keys {name}.security = \"none\" and {name}.password: the password would "
                                f"cross the network in clear text to {name}.host {section.host!r} "
                                "(use ssl or starttls; none is for a server on this machine)")
            if not section.tls_verify or section.ca_file:
                problems.append(f"config keys {name}.tls_verify / {name}.ca_file have no effect with "
                                f"{name}.security = \"none\" (no TLS is used)")
    problems.extend(_check_oauth2(s))
    if s.mailbox.processed_folder and s.mailbox.processed_folder == s.mailbox.folder:
        problems.append("config keys mailbox.processed_folder and mailbox.folder are the same folder: processed "
                        "mail would never leave it (leave processed_folder empty to keep mail in place, marked \\Seen)")
    late = [d for d in s.policy.reminder_days if d >= s.policy.abandon_days]
    if late:
        problems.append(f"config keys policy.reminder_days {late} and policy.abandon_days {s.policy.abandon_days}: "
                        "a reminder must come before the case is closed as abandoned")
    if any(d <= 0 for d in s.policy.reminder_days):
        problems.append("config key policy.reminder_days: days after the form was sent must be positive")
    for key, addresses in (("smtp.from_address", [s.smtp.from_address]),
                           ("staff.digest_recipients", s.staff.digest_recipients)):
        for address in addresses:
            try:
                validate_email(address, check_deliverability=False, globally_deliverable=False,
                               test_environment=True)  # syntax only: internal and test domains are fine
            except EmailNotValidError as exc:
                problems.append(f"config key {key}: {address!r} is not a usable address ({exc})")
    return problems


MIN_SECRET_KEY = 32


def check_web(s: Settings) -> list[str]:
    """What stops `web` from starting, naming the key; [] when nothing does."""
    key = s.web.secret_key.get_secret_value()
    if not key:
        return ["config key web.secret_key is empty: the console signs its session cookies with it "
                "(set BOT_WEB__SECRET_KEY, e.g. to the output of "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`)"]
    if len(key) < MIN_SECRET_KEY:
        return [f"config key web.secret_key is too short ({len(key)} characters; at least {MIN_SECRET_KEY})"]
    return []


def _check_oauth2(s: Settings) -> list[str]:
    """[oauth2] against mailbox.auth / smtp.auth, naming every key involved."""
    users = [name for name, auth in (("mailbox", s.mailbox.auth), ("smtp", s.smtp.auth)) if auth == "oauth2"]
    if not users:
        return []
    o, problems = s.oauth2, []
    why = " and ".join(f'{name}.auth = "oauth2"' for name in users)
    for name in users:
        section = s.mailbox if name == "mailbox" else s.smtp
        if section.security == "none" and section.host.lower() not in _LOOPBACK:
            problems.append(f'config keys {name}.auth = "oauth2" and {name}.security = "none": the access token would '
                            f"cross the network in clear text to {name}.host {section.host!r} (use ssl or starttls)")
    if "smtp" in users and not s.smtp.username:
        problems.append('config keys smtp.auth = "oauth2" and smtp.username: the mailbox the token signs in as is '
                        "needed (usually the same as mailbox.username)")
    if o.token_url and not o.token_url.startswith("https://"):
        problems.append(f"config key oauth2.token_url {o.token_url!r} must be an https:// address "
                        "(the client secret and tokens travel on it)")
    refresh = bool(o.refresh_token.get_secret_value())
    secret = bool(o.client_secret.get_secret_value())
    if o.provider == "google" and o.service_account_file:
        if refresh:
            problems.append("config keys oauth2.service_account_file and oauth2.refresh_token: choose one "
                            "(a service account with domain-wide delegation, or a user's refresh token)")
        return problems
    if o.provider == "google" and not refresh:
        problems.append(f'config keys oauth2.provider = "google" and {why} need oauth2.service_account_file '
                        "(a service account with domain-wide delegation) or oauth2.refresh_token")
    if not o.client_id:
        problems.append(f"config key oauth2.client_id is required with {why} (provider {o.provider!r})")
    if not secret and (not refresh or o.provider == "google"):
        grant = "the refresh token grant" if refresh else "the client credentials grant (no oauth2.refresh_token)"
        problems.append(f"config key oauth2.client_secret is required for {grant} with {why} "
                        "(set it in BOT_OAUTH2__CLIENT_SECRET)")
    if o.provider == "microsoft":
        if not o.tenant and not o.token_url:
            problems.append('config keys oauth2.provider = "microsoft" and oauth2.tenant: the directory (tenant) '
                            "id is required")
        if o.token_url and not o.token_url.rstrip("/").endswith("/oauth2/v2.0/token"):
            problems.append(f'config keys oauth2.provider = "microsoft" and oauth2.token_url {o.token_url!r}: '
                            "a Microsoft token endpoint ends in /oauth2/v2.0/token")
    if o.provider == "generic" and not o.token_url:
        problems.append(f'config keys oauth2.provider = "generic" and oauth2.token_url: the token endpoint is '
                        f"required with {why}")
    return problems


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


def packaged(name: str) -> Path:
    """A file or folder the package ships in `bot/defaults`: "templates", "rules.toml", "bot.example.toml"."""
    from importlib.resources import files

    return Path(str(files("bot.defaults") / name))


def default_rules_path() -> Path:
    """The rule file shipped in the package (in the repository: `config/rules.toml`)."""
    return packaged("rules.toml")


def rules_path(settings: Settings | None) -> Path:
    """The rule file the settings ask for: paths.rules, or the packaged one when it is empty."""
    given = settings.paths.rules if settings is not None else ""
    return Path(given) if given else default_rules_path()


def load_rules(path: Path) -> Rules:
    """The rule file, read and checked; any problem is a ConfigError naming the file and the rule."""
    return rules_from_data(read_toml(path, "rule file", "config key paths.rules"), source=str(path))


def default_model_path() -> Path:
    """The sorter's model shipped in the package (rebuilt by `privacy-bot sorter train`)."""
    return Path(__file__).resolve().parent / "core" / "classify" / "model.json"


def load_model(path: Path) -> Model:
    """The sorter's model file, read and checked; any problem is a ConfigError naming the file."""
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"sorter model {path} not found (config key sorter.model)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"sorter model {path} cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"sorter model {path} is not valid JSON: {exc}") from None
    return model_from_data(data, source=str(path))


def sorter_model(settings: Settings | None) -> Model | None:
    """The model the settings ask for: None when sorter.use_model is off."""
    if settings is not None and not settings.sorter.use_model:
        return None
    given = settings.sorter.model if settings is not None else ""
    return load_model(Path(given) if given else default_model_path())
