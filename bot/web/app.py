"""The console as an ASGI application: `create_app(settings, engine)`.

Every route but /login, /healthz and /static goes through `page()`, which keeps the promises of
SPEC section 6 in one place: no session -> 303 to /login; a POST without the session's CSRF token
-> 403 before anything is read or changed; a role below the page's -> 403. The handler then runs in
a worker thread (the store and the mailbox are blocking IO)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import jinja2
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.adapters.originals import fetch_originals
from bot.adapters.store.accounts import Account
from bot.settings import Settings
from bot.staff.accounts import Role, active, may
from bot.staff.console import Fetch
from bot.web import i18n
from bot.web.security import CSRF_FIELD, SecurityHeaders, cookie_name, csrf_ok, csrf_token, session_account
from bot.web.sending import OutboxSender

log = logging.getLogger(__name__)
_REF = re.compile(r"^[A-Za-z]{2,8}-\d{4}-\d{5}$")
MAX_BODY = 256 * 1024  # a form is small; a staff reply is at most 20,000 characters


@dataclass
class Console:
    """What every page needs: the settings, the store, the templates, the mailbox reader, the clock."""

    settings: Settings
    engine: Engine
    env: jinja2.Environment
    fetch: Fetch
    sender: OutboxSender
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


@dataclass
class Ctx:
    """One request, as a handler sees it."""

    request: Request
    console: Console
    account: Account | None
    form: FormData | None
    lang: str
    now: datetime

    @property
    def settings(self) -> Settings:
        return self.console.settings

    @property
    def engine(self) -> Engine:
        return self.console.engine

    @property
    def session(self) -> dict[str, Any]:
        session: dict[str, Any] = self.request.session
        return session

    def t(self, text: str) -> str:
        return i18n.translate(text, self.lang)

    def field(self, name: str) -> str:
        value = self.form.get(name, "") if self.form is not None else ""
        return value if isinstance(value, str) else ""

    def flash(self, kind: str, text: str) -> None:
        self.session.setdefault("flash", [])
        self.session["flash"] = [*self.session["flash"][-4:], [kind, text]]

    def render(self, template: str, code: int = 200, **data: Any) -> HTMLResponse:
        flashes = self.session.pop("flash", []) if isinstance(self.session.get("flash"), list) else []
        zone = self.settings.zone
        html = self.console.env.get_template(template).render(
            t=self.t, lang=self.lang, account=self.account, csrf=csrf_token(self.session), path=self.request.url.path,
            query=self.request.url.query, flashes=flashes, may=lambda role: self.account is not None and may(
                self.account.role, Role(role)),
            day=lambda d: d.astimezone(zone).strftime("%Y-%m-%d") if d else "",
            when=lambda d: d.astimezone(zone).strftime("%Y-%m-%d %H:%M") if d else "",
            zone=self.settings.policy.timezone, now=self.now, **data)
        return HTMLResponse(html, status_code=code)

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def refuse(self, status: int, message: str) -> HTMLResponse:
        return self.render("error.html", code=status, status_code=status, message=self.t(message))


Handler = Callable[[Ctx], Response]


def _language(request: Request, default: str) -> str:
    asked = request.query_params.get("lang", "")
    if asked in i18n.LANGUAGES:
        request.session["lang"] = asked
        return asked
    kept = request.session.get("lang")
    return kept if kept in i18n.LANGUAGES else default


def page(console: Console, handler: Handler, role: Role | None) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint for `handler`; `role` None: no sign-in needed (the login page)."""

    async def endpoint(request: Request) -> Response:
        lang = _language(request, console.settings.web.language)
        now = console.clock()
        form: FormData | None = None
        if request.method == "POST":
            if int(request.headers.get("content-length") or 0) > MAX_BODY:
                return Response("request too large", status_code=413)
            form = await request.form(max_files=0, max_fields=64, max_part_size=MAX_BODY)
            if not csrf_ok(request.session, form.get(CSRF_FIELD)):
                ctx = Ctx(request, console, None, form, lang, now)
                return await run_in_threadpool(ctx.refuse, 403, "The form has expired or did not come from this "
                                                                 "console: nothing was changed. Reload the page and try again.")
        account = None
        if role is not None:
            who = session_account(request.session, console.settings.web.session_minutes)
            account = await run_in_threadpool(active, console.engine, *who) if who else None
            if account is None:
                for key in ("u", "e", "at"):
                    request.session.pop(key, None)
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
            if not may(account.role, role):
                ctx = Ctx(request, console, account, form, lang, now)
                return await run_in_threadpool(ctx.refuse, 403, "Your role does not allow this: nothing was changed.")
        ctx = Ctx(request, console, account, form, lang, now)
        started = time.monotonic()
        response = await run_in_threadpool(handler, ctx)
        # the page's name and a well-formed case reference only: a typed path or query may hold an address
        ref = str(request.path_params.get("ref", ""))
        log.info("%s %s%s -> %s %.0f ms", request.method, handler.__name__,
                 f" ref={ref.upper()}" if _REF.match(ref) else "", response.status_code,
                 (time.monotonic() - started) * 1000)
        return response

    return endpoint


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("bot.web", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


def create_app(settings: Settings, engine: Engine, *, fetch: Fetch | None = None,
               clock: Callable[[], datetime] | None = None) -> Starlette:
    """The console; `fetch` reads customer mail back (default: from settings.mailbox over IMAP)."""
    from bot.web import pages

    now = clock or (lambda: datetime.now(UTC))
    console = Console(settings, engine, environment(), fetch or partial(fetch_originals, settings.mailbox),
                      OutboxSender(settings, engine, now), now)

    def p(handler: Handler, role: Role | None = Role.VIEWER) -> Callable[[Request], Awaitable[Response]]:
        return page(console, handler, role)

    async def healthz(_request: Request) -> Response:
        try:
            ok = await run_in_threadpool(pages.database_answers, engine)
        except Exception:  # any database trouble: not healthy, and nothing about it in the answer
            ok = False
        return JSONResponse({"status": "ok" if ok else "database unavailable"}, status_code=200 if ok else 503)

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/login", p(pages.login_form, None), methods=["GET"]),
        Route("/login", p(pages.login, None), methods=["POST"]),
        Route("/logout", p(pages.logout_form), methods=["GET"]),
        Route("/logout", p(pages.logout), methods=["POST"]),
        Route("/", p(pages.queue), methods=["GET"]),
        Route("/cases", p(pages.cases), methods=["GET"]),
        Route("/cases/{ref}", p(pages.case), methods=["GET"]),
        Route("/cases/{ref}/export", p(pages.export), methods=["GET"]),
        Route("/cases/{ref}/messages/{row:int}.eml", p(pages.message_file), methods=["GET"]),
        Route("/cases/{ref}/messages/{row:int}/attachments/{index:int}", p(pages.attachment), methods=["GET"]),
        Route("/cases/{ref}/{action}", p(pages.case_action, Role.STAFF), methods=["POST"]),
        Route("/quarantine", p(pages.quarantine, Role.ADMIN), methods=["GET"]),
        Route("/templates", p(pages.templates, Role.ADMIN), methods=["GET"]),
        Mount("/static", StaticFiles(packages=[("bot.web", "static")]), name="static"),
        Route("/{rest:path}", p(pages.not_found), methods=["GET", "POST"]),
    ]
    secure = settings.web.secure_cookie
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=settings.web.secret_key.get_secret_value(),
                   session_cookie=cookie_name(secure), max_age=settings.web.session_minutes * 60,
                   same_site="lax", https_only=secure),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.console = console
    return app
