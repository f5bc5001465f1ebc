"""OAuth 2.0 access tokens for IMAP and SMTP (SPEC section 7): one `TokenSource` per bot.

`TokenSource.token()` hands out a cached token and renews it before it expires (thread-safe: the
watcher and the senders share it); `invalidate(token)` drops one the server refused, so the next
call fetches a new one. Where the tokens come from is a `Fetcher`, one per provider:

- microsoft: MSAL (`msal`), the client credentials grant (an app with IMAP.AccessAsApp /
  SMTP.SendAsApp on the mailbox) or a user's refresh token;
- google: google-auth, a service account with domain-wide delegation acting as the mailbox
  (`with_subject`), or a user's refresh token;
- generic: any RFC 6749 token endpoint, client credentials or refresh token.

All of them talk HTTPS through one `requests` session that trusts the system CAs plus
`oauth2.ca_file`. A failure is an `OAuth2Error` with the provider's error code; neither it nor
any log line holds a token or a secret.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from bot.core.errors import OAuth2Error
from bot.settings import OAuth2Settings

log = logging.getLogger(__name__)

MICROSOFT_LOGIN = "https://login.microsoftonline.com"
MICROSOFT_APP_SCOPE = "https://outlook.office365.com/.default"  # client credentials: IMAP.AccessAsApp, SMTP.SendAsApp
MICROSOFT_USER_SCOPES = ("https://outlook.office.com/IMAP.AccessAsUser.All", "https://outlook.office.com/SMTP.Send")
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GOOGLE_SCOPE = "https://mail.google.com/"
DEFAULT_LIFETIME = 3600.0  # when an endpoint does not say how long its token lives
MAX_COOLDOWN = 60.0  # after failed fetches, the endpoint is asked again at most this often


@dataclass(frozen=True)
class Token:
    value: str = field(repr=False)
    expires_at: float  # seconds since the epoch
    issued_at: float


class Fetcher(Protocol):
    """Gets a new token from the provider (never a cached one); raises OAuth2Error."""

    provider: str

    def fetch(self, now: float) -> Token: ...


def renew_at(token: Token, margin: float) -> float:
    """When a token is renewed: `margin` seconds before it expires, but not before half its life."""
    life = max(0.0, token.expires_at - token.issued_at)
    return token.expires_at - min(margin, life / 2)


def cooldown(failures: int) -> float:
    """How long after the n-th failed fetch in a row the endpoint is not asked again: 1, 2, 4 ... 60 s."""
    return min(2.0 ** max(0, failures - 1), MAX_COOLDOWN) if failures else 0.0


@dataclass(frozen=True)
class TokenStatus:
    """What the health page and the metrics show; no token in it."""

    provider: str
    ok: bool | None  # None: no token asked for yet
    error: OAuth2Error | None
    errors: dict[str, int]  # failed fetches by error code, since start
    fetched: int  # tokens obtained since start


class TokenSource:
    """The cached token of one provider, renewed before it expires. Safe to share between threads."""

    def __init__(self, fetcher: Fetcher, *, margin: float = 300.0, clock: Callable[[], float] = time.time) -> None:
        self.fetcher = fetcher
        self.provider = fetcher.provider
        self.margin = margin
        self.clock = clock
        self._lock = threading.Lock()
        self._token: Token | None = None
        self._error: OAuth2Error | None = None
        self._failures = 0
        self._failed_at = 0.0
        self._errors: Counter[str] = Counter()
        self._fetched = 0

    def token(self) -> str:
        """A token valid for a while yet; raises OAuth2Error when none can be had."""
        with self._lock:
            now = self.clock()
            if self._token is not None and now < renew_at(self._token, self.margin):
                return self._token.value
            if self._error is not None and now < self._failed_at + cooldown(self._failures):
                raise self._error  # asked again too soon: the endpoint said no a moment ago
            try:
                token = self.fetcher.fetch(now)
            except OAuth2Error as exc:
                self._token = None
                self._failed(exc, now)
                raise
            self._token, self._error, self._failures = token, None, 0
            self._fetched += 1
            if self._errors:
                log.info("oauth2: access token from %s obtained again", self.provider)
            log.debug("oauth2: new access token from %s, valid for %.0f s", self.provider, token.expires_at - now)
            return token.value

    def invalidate(self, token: str | None = None) -> None:
        """The server refused `token` (or, with None, whatever is cached): the next call fetches anew."""
        with self._lock:
            if self._token is not None and (token is None or token == self._token.value):
                self._token = None

    @property
    def status(self) -> TokenStatus:
        with self._lock:
            ok = None if not (self._fetched or self._errors) else self._error is None
            return TokenStatus(self.provider, ok, self._error, dict(self._errors), self._fetched)

    def _failed(self, exc: OAuth2Error, now: float) -> None:
        self._error, self._failed_at = exc, now
        self._failures += 1
        self._errors[exc.code] += 1
        log.error("%s (attempt %s; next try in %.0f s at the earliest)", exc, self._failures,
                  cooldown(self._failures))


# -- HTTP ------------------------------------------------------------------------------------------


class _TLSAdapter(HTTPAdapter):
    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)


class _Session(requests.Session):
    """requests with a default timeout, and a TLS context: the system CAs plus `ca_file`."""

    def __init__(self, ca_file: str, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        context = ssl.create_default_context()
        if ca_file:
            context.load_verify_locations(cafile=ca_file)
        self.mount("https://", _TLSAdapter(context))

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        return super().request(method, url, *args, **kwargs)


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    """A provider's error text made safe to log: one line, short, no secret of ours in it."""
    line = " ".join(str(text).split())
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line[:300]


def _error_from(provider: str, data: dict[str, Any], status: int, secrets: tuple[str, ...]) -> OAuth2Error:
    code = str(data.get("error") or f"http_{status}")
    description = _scrub(str(data.get("error_description") or ""), secrets)
    codes = data.get("error_codes")
    provider_code = f"AADSTS{codes[0]}" if isinstance(codes, list) and codes else ""
    if not provider_code and description.startswith("AADSTS"):
        provider_code = description.split(":", 1)[0]
    return OAuth2Error(provider, code, description, provider_code=provider_code)


def _network_error(provider: str, exc: BaseException) -> OAuth2Error:
    return OAuth2Error(provider, "unreachable", f"token endpoint not reached ({type(exc).__name__})")


def _token_from(provider: str, data: dict[str, Any], now: float) -> Token:
    value = data.get("access_token")
    if not isinstance(value, str) or not value:
        raise OAuth2Error(provider, "bad_response", "the token endpoint's answer holds no access_token")
    try:
        life = float(data.get("expires_in") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        life = DEFAULT_LIFETIME
    return Token(value, now + life, now)


# -- providers -------------------------------------------------------------------------------------


class GenericFetcher:
    """Any token endpoint (RFC 6749): client credentials, or the refresh token grant."""

    provider = "generic"

    def __init__(self, s: OAuth2Settings, session: requests.Session) -> None:
        self.url = s.token_url
        self.client_id = s.client_id
        self.secret = s.client_secret.get_secret_value()
        self.refresh_token = s.refresh_token.get_secret_value()
        self.scope = s.scope
        self.session = session

    def fetch(self, now: float) -> Token:
        form = {"client_id": self.client_id}
        if self.secret:
            form["client_secret"] = self.secret
        if self.refresh_token:
            form.update(grant_type="refresh_token", refresh_token=self.refresh_token)
        else:
            form["grant_type"] = "client_credentials"
        if self.scope:
            form["scope"] = self.scope
        try:
            response = self.session.post(self.url, data=form, headers={"Accept": "application/json"})
        except requests.RequestException as exc:
            raise _network_error(self.provider, exc) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OAuth2Error(self.provider, f"http_{response.status_code}", "the token endpoint did not answer JSON")
        if response.status_code != 200 or "error" in data:
            raise _error_from(self.provider, data, response.status_code, (self.secret, self.refresh_token))
        rotated = data.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self.refresh_token = rotated  # the endpoint rotates refresh tokens: the old one may stop working
        return _token_from(self.provider, data, now)


class MicrosoftFetcher:
    """Microsoft Entra ID through MSAL: client credentials (app permissions) or a refresh token."""

    provider = "microsoft"

    def __init__(self, s: OAuth2Settings, session: requests.Session) -> None:
        import msal

        self._msal = msal
        self.secret = s.client_secret.get_secret_value()
        self.refresh_token = s.refresh_token.get_secret_value()
        if s.token_url:  # a national cloud, or a test server: the authority is the part before /oauth2/v2.0/token
            authority = s.token_url.rstrip("/").removesuffix("/oauth2/v2.0/token")
        else:
            authority = f"{MICROSOFT_LOGIN}/{s.tenant}"
        custom = not authority.startswith(MICROSOFT_LOGIN + "/")
        if self.refresh_token:
            self.scopes = s.scope.split() if s.scope else list(MICROSOFT_USER_SCOPES)
        else:
            self.scopes = s.scope.split() if s.scope else [MICROSOFT_APP_SCOPE]
        self.client_id = s.client_id
        self.authority = authority
        self.custom = custom
        self.session = session
        self._app: Any = None

    def _application(self) -> Any:
        if self._app is None:  # built on first use: MSAL reads the authority's metadata here
            kwargs: dict[str, Any] = {"authority": self.authority, "http_client": self.session,
                                      "token_cache": self._msal.TokenCache()}
            if self.custom:
                kwargs.update(validate_authority=False, instance_discovery=False)
            try:
                if self.secret:
                    self._app = self._msal.ConfidentialClientApplication(
                        self.client_id, client_credential=self.secret, **kwargs)
                else:
                    self._app = self._msal.PublicClientApplication(self.client_id, **kwargs)
            except ValueError as exc:  # the authority's metadata could not be read
                raise OAuth2Error(self.provider, "bad_authority", _scrub(str(exc), (self.secret,))) from None
            except requests.RequestException as exc:
                raise _network_error(self.provider, exc) from None
        return self._app

    def fetch(self, now: float) -> Token:
        app = self._application()
        cache = app.token_cache  # MSAL keeps its own cache; ours decides when to renew, so empty it
        for item in list(cache.search(cache.CredentialType.ACCESS_TOKEN)):
            cache.remove_at(item)
        try:
            if self.refresh_token:
                result = app.acquire_token_by_refresh_token(self.refresh_token, scopes=self.scopes)
            else:
                result = app.acquire_token_for_client(scopes=self.scopes)
        except requests.RequestException as exc:
            raise _network_error(self.provider, exc) from None
        if not isinstance(result, dict):
            raise OAuth2Error(self.provider, "bad_response", "MSAL gave no answer")
        if "access_token" not in result:
            raise _error_from(self.provider, result, 400, (self.secret, self.refresh_token))
        rotated = result.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self.refresh_token = rotated
        return _token_from(self.provider, result, now)


class GoogleFetcher:
    """Google through google-auth: a service account acting as the mailbox, or a user's refresh token."""

    provider = "google"

    def __init__(self, s: OAuth2Settings, session: requests.Session, subject: str) -> None:
        from google.auth.transport.requests import Request

        self.scopes = s.scope.split() if s.scope else [GOOGLE_SCOPE]
        self.request = Request(session=session)
        self.secret = s.client_secret.get_secret_value()
        self.refresh = s.refresh_token.get_secret_value()
        self.token_url = s.token_url
        self.key_file = s.service_account_file
        self.subject = s.subject or subject
        self.client_id = s.client_id
        self._credentials: Any = None

    def _make(self) -> Any:
        if self.key_file:
            from google.oauth2 import service_account

            try:
                creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                    self.key_file, scopes=self.scopes)
            except (OSError, ValueError, KeyError) as exc:
                raise OAuth2Error(self.provider, "bad_key_file",
                                  f"oauth2.service_account_file cannot be used ({type(exc).__name__})") from None
            creds = creds.with_subject(self.subject)
            return creds.with_token_uri(self.token_url) if self.token_url else creds
        from google.oauth2.credentials import Credentials

        return Credentials(None, refresh_token=self.refresh, token_uri=self.token_url or GOOGLE_TOKEN_URL,
                           client_id=self.client_id, client_secret=self.secret,
                           scopes=self.scopes)  # type: ignore[no-untyped-call]

    def fetch(self, now: float) -> Token:
        from google.auth import exceptions

        if self._credentials is None:
            self._credentials = self._make()
        creds = self._credentials
        try:
            creds.refresh(self.request)
        except exceptions.RefreshError as exc:
            data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
            if not data and exc.args:
                data = _json_error(str(exc.args[0]))
            raise _error_from(self.provider, data, 400, (self.secret, self.refresh)) from None
        except exceptions.TransportError as exc:
            raise _network_error(self.provider, exc) from None
        expiry = creds.expiry  # a naive datetime in UTC
        life = expiry.replace(tzinfo=UTC).timestamp() - time.time() if expiry is not None else DEFAULT_LIFETIME
        return Token(str(creds.token), now + max(0.0, life), now)


def _json_error(text: str) -> dict[str, Any]:
    """google-auth puts "error: description" in its message when it has no parsed body."""
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            return data
    except ValueError:
        pass
    code, _, description = text.partition(":")
    return {"error": code.strip() or "refresh_failed", "error_description": description.strip()}


def token_source(s: OAuth2Settings, *, user: str) -> TokenSource:
    """The TokenSource the settings describe; `user` is the mailbox (a Google service account acts as it)."""
    session = _Session(s.ca_file, s.timeout_seconds)
    fetcher: Fetcher
    if s.provider == "microsoft":
        fetcher = MicrosoftFetcher(s, session)
    elif s.provider == "google":
        fetcher = GoogleFetcher(s, session, user)
    else:
        fetcher = GenericFetcher(s, session)
    return TokenSource(fetcher, margin=s.renew_before_seconds)


__all__ = ["OAuth2Error", "Token", "TokenSource", "TokenStatus", "cooldown", "renew_at", "token_source"]
