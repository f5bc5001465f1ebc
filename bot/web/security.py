"""The console's security promises in one place (SPEC section 6).

- Sessions: a cookie signed with `web.secret_key` (Starlette's SessionMiddleware, itsdangerous), HttpOnly
  and SameSite=Lax, Secure unless the console is served on loopback only; it names the account and
  the account's session epoch (a password change or disabling ends every session) and expires
  `web.session_minutes` after sign-in.
- CSRF: one random token per session, a hidden `csrf_token` field in every form; a POST without the
  right one answers 403 before anything else happens.
- Headers on every answer: a Content-Security-Policy without inline scripts or styles, no framing,
  no MIME sniffing, no referrer, and no caching of pages that show personal data.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
CSRF_FIELD = "csrf_token"


def cookie_name(secure: bool) -> str:
    # __Host-: the browser keeps it only when Secure, for this host and path / (no sub-domain can set it)
    return "__Host-console" if secure else "console"


class SecurityHeaders:
    """ASGI middleware: the headers above on every answer; `Cache-Control: no-store` except for static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS:
                    headers[name] = value
                headers["Cache-Control"] = "public, max-age=3600" if static else "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


# -- the session's contents ------------------------------------------------------------------------

def csrf_token(session: MutableMapping[str, Any]) -> str:
    token = session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok(session: MutableMapping[str, Any], given: object) -> bool:
    expected = session.get("csrf")
    return (isinstance(expected, str) and isinstance(given, str) and len(expected) >= 32
            and secrets.compare_digest(expected.encode(), given.encode()))


def signed_in(session: MutableMapping[str, Any], name: str, epoch: int) -> None:
    """A fresh session for the account (a new CSRF token too: nothing of the signed-out session carries over
    but the language)."""
    lang = session.get("lang")
    session.clear()
    session.update({"u": name, "e": epoch, "at": int(time.time()), "csrf": secrets.token_urlsafe(32)})
    if lang:
        session["lang"] = lang


def session_account(session: MutableMapping[str, Any], minutes: int) -> tuple[str, int] | None:
    """(account name, epoch) of a session that has not expired; None otherwise."""
    name, epoch, at = session.get("u"), session.get("e"), session.get("at")
    if not isinstance(name, str) or not isinstance(epoch, int) or not isinstance(at, int):
        return None
    if time.time() - at > minutes * 60:
        return None
    return name, epoch


def signed_out(session: MutableMapping[str, Any]) -> None:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value or "\n" in value:
        return "/"
    return value
