"""Checks that involve several keys together (each key is fine on its own), naming every key involved."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.settings.sections import LOOPBACK

if TYPE_CHECKING:
    from bot.settings import Settings


def check_together(s: Settings) -> list[str]:
    """What is wrong with several keys together (each key is fine on its own), naming every key
    involved; [] when nothing is. The model: aiosmtplib's `_validate_config`."""
    from email_validator import EmailNotValidError, validate_email

    problems: list[str] = []
    for name, section in (("mailbox", s.mailbox), ("smtp", s.smtp)):
        if section.security == "none":
            if section.password.get_secret_value() and section.host.lower() not in LOOPBACK:
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
        if section.security == "none" and section.host.lower() not in LOOPBACK:
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
