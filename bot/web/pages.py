"""The console's pages: each handler parses the request, calls the staff layer, renders (no SQL here).

Handlers run in a worker thread (see bot.web.app.page), after the session, CSRF and role checks."""

from __future__ import annotations

import logging
from datetime import datetime
from urllib.parse import urlencode

from sqlalchemy import Engine
from starlette.responses import Response

from bot.adapters.store.console import healthy
from bot.app.mailing import Mailing
from bot.core import lifecycle
from bot.core.clock import parse_when
from bot.core.errors import MailboxError, UsageError
from bot.core.model import KIND_ORDER, CaseOutcome, Kind, Status
from bot.staff import accounts, actions
from bot.staff import console as views
from bot.staff.evidence import build_pack
from bot.web.app import Ctx
from bot.web.security import safe_next, signed_in, signed_out

log = logging.getLogger(__name__)

DOCUMENTS = ("Driver's licence", "My Number card", "Passport", "Residence card", "Health insurance card",
             "Residence certificate", "Other")
STATUS_ORDER = tuple(Status)


def database_answers(engine: Engine) -> bool:
    return healthy(engine)


# -- signing in and out ----------------------------------------------------------------------------

def login_form(ctx: Ctx) -> Response:
    return ctx.render("login.html", next=safe_next(ctx.request.query_params.get("next")), error="", username="")


def login(ctx: Ctx) -> Response:
    name, password = ctx.field("username"), ctx.field("password")
    target = safe_next(ctx.field("next"))
    result = accounts.sign_in(ctx.engine, name, password, now=ctx.now)
    if result.account is not None:
        signed_in(ctx.session, result.account.name, result.account.session_epoch)
        log.info("console sign-in role=%s", result.account.role)
        return ctx.redirect(target)
    if result.wait is not None:
        minutes = max(1, -(-int(result.wait.total_seconds()) // 60))
        error = ctx.t("Too many failed sign-ins: this account must wait {n} minutes before it can sign in again.")
        log.warning("console sign-in refused: the account waits after repeated failures")
        return ctx.render("login.html", code=429, next=target, error=error.format(n=minutes), username=name)
    log.info("console sign-in refused")
    return ctx.render("login.html", code=401, next=target, error=ctx.t("Wrong username or password."),
                      username=name)


def logout_form(ctx: Ctx) -> Response:
    return ctx.render("logout.html")


def logout(ctx: Ctx) -> Response:
    signed_out(ctx.session)
    return ctx.redirect("/login")


# -- reading ---------------------------------------------------------------------------------------

def queue(ctx: Ctx) -> Response:
    now = ctx.now

    def days(start: datetime | None, end: datetime | None) -> int:
        return (end - start).days if start is not None and end is not None else 0

    return ctx.render("queue.html", sections=views.queue(ctx.engine, now),
                      overdue_days=lambda c: days(c.due_at, now) + 1, days_left=lambda c: days(now, c.due_at),
                      waiting_days=lambda c: days(c.customer_waiting_since, now),
                      open_days=lambda c: days(c.opened_at, now))


def _page_number(text: str) -> int:
    return int(text) if text.isdigit() and 0 < len(text) < 7 else 1


def cases(ctx: Ctx) -> Response:
    params = ctx.request.query_params
    status = params.get("status", "")
    kind = params.get("kind", "")
    status = status if status in {s.value for s in Status} else ""
    kind = kind if kind in {k.value for k in Kind} else ""
    overdue = params.get("overdue", "") == "1"
    q = params.get("q", "").strip()
    found = views.case_list(ctx.engine, status=status, kind=kind, overdue_at=ctx.now if overdue else None, q=q,
                            page=_page_number(params.get("page", "1")), size=ctx.settings.web.page_size)
    keep = [(k, v) for k, v in (("status", status), ("kind", kind), ("overdue", "1" if overdue else ""), ("q", q)) if v]

    def page_url(n: int) -> str:
        return "/cases?" + urlencode([*keep, ("page", str(n))])

    return ctx.render("cases.html", found=found, status=status, kind=kind, overdue=overdue, q=q, page_url=page_url,
                      statuses=STATUS_ORDER, kinds=KIND_ORDER, none=None)


def case(ctx: Ctx) -> Response:
    ref = ctx.request.path_params["ref"]
    try:
        shown = views.case_page(ctx.engine, ref, ctx.console.fetch)
    except UsageError:
        return ctx.refuse(404, "There is no case with this reference.")
    today = ctx.now.astimezone(ctx.settings.zone).date().isoformat()
    return ctx.render("case.html", page=shown, c=shown.case, kinds=KIND_ORDER, documents=DOCUMENTS,
                      outcomes=tuple(CaseOutcome), today=today, rights=any(k.value in RIGHTS for k in shown.case.kinds))


RIGHTS = {"disclosure", "amendment", "addition", "deletion", "third_party_stop"}


def export(ctx: Ctx) -> Response:
    ref = ctx.request.path_params["ref"].strip().upper()
    assert ctx.account is not None
    try:
        pack = build_pack(ctx.engine, ref, ctx.console.fetch, now=ctx.now, zone=ctx.settings.zone,
                          exported_by=ctx.account.name)
    except UsageError:
        return ctx.refuse(404, "There is no case with this reference.")
    except MailboxError:
        return ctx.refuse(502, "The mailbox could not be reached to read the customer's mail: no evidence pack "
                               "was made. Try again later.")
    log.info("evidence pack exported ref=%s role=%s", ref, ctx.account.role)
    return Response(pack.data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{ref}-evidence.zip"'})


def message_file(ctx: Ctx) -> Response:
    ref, row = ctx.request.path_params["ref"], ctx.request.path_params["row"]
    try:
        raw = views.message_file(ctx.engine, ref, row, ctx.console.fetch)
    except (UsageError, MailboxError) as exc:
        return ctx.refuse(404, str(exc))
    return Response(raw, media_type="message/rfc822",
                    headers={"Content-Disposition": f'attachment; filename="{ref.upper()}-{row}.eml"'})


def attachment(ctx: Ctx) -> Response:
    p = ctx.request.path_params
    try:
        filename, content_type, data = views.attachment(ctx.engine, p["ref"], p["row"], p["index"])
    except UsageError as exc:
        return ctx.refuse(404, str(exc))
    safe = "".join(ch for ch in filename if ch.isalnum() or ch in "._-")[:100] or "attachment"
    return Response(data, media_type=content_type if content_type == "application/pdf" else "application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{safe}"'})


def quarantine(ctx: Ctx) -> Response:
    lines, total = views.quarantined(ctx.engine)
    return ctx.render("quarantine.html", lines=lines, total=total)


def templates(ctx: Ctx) -> Response:
    return ctx.render("templates.html", previews=views.previews(ctx.settings))


def not_found(ctx: Ctx) -> Response:
    return ctx.refuse(404, "There is no such page.")


# -- acting on a case ------------------------------------------------------------------------------

def _date(ctx: Ctx, name: str, default_now: bool) -> datetime:
    text = ctx.field(name).strip()
    if not text:
        if default_now:
            return ctx.now
        raise UsageError(ctx.t("Give a date."))
    try:
        return parse_when(text, ctx.settings.zone)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def case_action(ctx: Ctx) -> Response:
    ref = ctx.request.path_params["ref"].strip().upper()
    action = ctx.request.path_params["action"]
    assert ctx.account is not None
    actor = ctx.account.name
    policy = ctx.settings.case_policy
    now = ctx.now
    done = ""
    try:
        if action == "docs-received":
            _, done = actions.documents_received(ctx.engine, ref, _date(ctx, "on", False), now=now, policy=policy,
                                                 actor=actor)
        elif action == "responded":
            _, done = actions.responded(ctx.engine, ref, _date(ctx, "on", True), now=now, policy=policy, actor=actor)
        elif action in ("reply", "insufficient"):
            mailing = _mailing(ctx)
            if action == "reply":
                actions.reply(ctx.engine, mailing, ref, ctx.field("message"), now=now, actor=actor)
                done = ctx.t("Reply queued; it is being sent.")
            else:
                _, done = actions.documents_insufficient(ctx.engine, mailing, ref, ctx.field("missing"), now=now,
                                                         actor=actor)
            ctx.console.sender.poke()
        elif action == "kinds":  # also kept as a correction for the sorter, as on the command line
            assert ctx.form is not None
            try:
                kinds = tuple(Kind(v) for v in ctx.form.getlist("kind") if isinstance(v, str))
            except ValueError:
                raise UsageError("unknown kind") from None
            s = ctx.settings
            _, done = actions.set_kinds(ctx.engine, ref, kinds, now=now, policy=policy, actor=actor,
                                        keep_text=s.database.keep_bodies and s.sorter.keep_correction_text)
        else:
            event = _event(ctx, action)
            if event is None:
                return ctx.refuse(404, "There is no such page.")
            _, done = actions.apply(ctx.engine, ref, event, now=now, policy=policy, actor=actor)
    except UsageError as exc:  # TransitionError too: the case is unchanged
        ctx.flash("error", str(exc))
        return ctx.redirect(f"/cases/{ref}#actions")
    ctx.flash("ok", done or ctx.t("Done."))
    return ctx.redirect(f"/cases/{ref}")


def _event(ctx: Ctx, action: str) -> lifecycle.CaseEvent | None:
    if action == "extend":
        days = ctx.field("days").strip()
        if not days.lstrip("-").isdigit() or len(days) > 4:
            raise UsageError(ctx.t("Days must be a whole number."))
        return lifecycle.Extend(int(days), ctx.field("reason"))
    if action == "close":
        return lifecycle.Close(ctx.now, ctx.field("reason").strip()[:1000])
    if action == "identity":
        return lifecycle.IdentityVerified(ctx.field("document"))
    if action == "outcome":
        try:
            outcome = CaseOutcome(ctx.field("outcome"))
        except ValueError:
            raise UsageError(ctx.t("Choose an outcome.")) from None
        return lifecycle.OutcomeRecorded(outcome, ctx.field("reason"), ctx.now)
    if action == "handled":
        return lifecycle.Handled()
    return None


def _mailing(ctx: Ctx) -> Mailing:

    from bot.compose.templates import Renderer, template_folders

    return Mailing(ctx.settings, Renderer(*template_folders(ctx.settings.paths.templates)))
