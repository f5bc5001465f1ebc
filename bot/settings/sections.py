"""The sections of the settings, one class each: fields with their defaults and one-field checks."""

from __future__ import annotations

from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
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
    # the receiving servers whose Authentication-Results headers are read (SPEC section 9); empty: none
    trusted_authserv_ids: list[str] = Field(default_factory=list)
    idle_renew_seconds: int = Field(5 * 60, ge=10, le=29 * 60)  # ends with a pass: bounds a missed notification
    poll_seconds: int = Field(60, ge=1)  # used when the server lacks IDLE
    max_message_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    fetch_batch: int = Field(200, ge=1, le=5000)
    fetch_batch_bytes: int = Field(20 * 1024 * 1024, ge=1024)  # whole mails in one FETCH add up to at most this
    timeout_seconds: float = Field(60.0, gt=0)
    reconnect_max_seconds: float = Field(60.0, gt=0)
    burst_seconds: float = Field(0.6, ge=0)  # after a pass that took in mail, poll this long before IDLE
    follower_seconds: float = Field(1.0, gt=0)  # a process that does not lead sends and retries leading this often
    # processed mail older than this many days is moved to retention_folder or deleted by `run`'s daily job (0: kept)
    retention_days: int = Field(0, ge=0)
    retention_action: Literal["move", "delete"] = "move"
    retention_folder: str = Field("Archive", min_length=1)

    @field_validator("trusted_authserv_ids")
    @classmethod
    def _authserv_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.strip() or any(ch.isspace() or ch in ';()"' for ch in item.strip()):
                raise ValueError(f"{item!r} is not an authserv-id (the first word of an Authentication-Results "
                                 "header your receiving server writes, e.g. \"mx.example.com\")")
        return [item.strip().lower() for item in value]


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
    retention_days: int = Field(default=0, ge=0)  # purge personal data of cases closed this long ago (0: never);
    # `run` purges daily when set, and `cases purge` on demand


class StaffSettings(Section):
    digest_recipients: list[str] = Field(default_factory=list)
    digest_time: time = time(9, 0)
    language: Literal["en", "ja"] = "en"


class PolicySettings(Section):
    timezone: str = "Asia/Tokyo"
    response_days: int = Field(14, ge=1, le=365)
    postal_address: str
    # limits on automatic mail (acknowledgements, reminders), counted on normalised addresses (SPEC section 9)
    max_auto_replies_per_sender_per_day: int = Field(3, ge=0)
    max_auto_replies_per_domain_per_hour: int = Field(20, ge=0)
    max_auto_replies_per_hour: int = Field(100, ge=0)
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
        return self.public_url.startswith("https://") or self.host.strip("[]").lower() not in LOOPBACK


class SorterSettings(Section):
    model: str = ""  # the sorter's model file; "" is the one shipped in the package
    use_model: bool = True  # false: the rule file alone sorts (no confidence, nothing is "unsure")
    keep_correction_text: bool = True  # keep the inquiry's own words with a staff correction (when bodies are kept)


class LogSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
