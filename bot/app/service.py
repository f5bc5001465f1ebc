"""The long-running shell: connect, catch up, watch, send. Each pass is one function call.

`Bot.run_once()` is one full pass; `Bot.run()` repeats passes under IMAP IDLE and reconnects
with backoff after any network trouble, until asked to stop. Several `run` processes may share
one database: the leader (see bot/workers.py) watches the mailbox and runs the scheduled jobs,
the others send from the outbox and take over within a second or two when the leader dies.

Containment (issue 10): a mail whose fetching or taking in fails is counted against its UID in the
ledger and tried on the next passes; after ledger.FAILURES_ALLOWED failures it is quarantined with the
reason. A mail in the ledger is never fetched again. A pass that fails for any other reason backs off
and retries; nothing but stop() ends `run`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from bot.adapters.imap import NETWORK_ERRORS, Fetched, FetchFailed, IMAPClientError, Mailbox, Selected
from bot.adapters.locks import Presence
from bot.adapters.oauth2 import TokenSource, token_source
from bot.adapters.smtp import Mailer
from bot.adapters.store import ledger
from bot.adapters.store.engine import make_engine, trouble
from bot.adapters.watcher import Watcher
from bot.app.digest_job import daily_digest_due, queue_digest
from bot.app.health import Vitals
from bot.app.intake import Intake, Outcome
from bot.app.mailing import Mailing
from bot.app.notify import Notifier
from bot.app.outbox import FlushReport, flush
from bot.app.retention_job import daily_retention
from bot.app.sweep import sweep_once
from bot.compose.templates import Renderer, check_all, template_folders
from bot.core.classify.rules import Rules
from bot.core.errors import ConfigError, MailboxError
from bot.core.model import Action
from bot.settings import Settings, load_rules, rules_path, sorter_model

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Called with each mail's outcome once it is recorded and before its reply is sent (a seam for
# observers, e.g. a crash test that stops the process at that moment).
AfterRecord = Callable[[Outcome], None]
RECONNECT_ON: tuple[type[BaseException], ...] = (*NETWORK_ERRORS, MailboxError, DBAPIError)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _short(reason: str) -> str:
    """What failed and the exception class, without the exception's words (they may quote the mail)."""
    return ":".join(reason.split(":")[:2])


def _where(exc: BaseException) -> str:
    """Where an exception was raised (file:line of the innermost frame), for a log line without its words."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{tb.tb_lineno}" if tb is not None else "?"


class Bot:
    def __init__(self, settings: Settings, *, clock: Clock = utc_now, engine: Engine | None = None,
                 after_record: AfterRecord | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = engine or make_engine(settings.database.url)
        self.rules: Rules = load_rules(rules_path(settings))
        self.renderer = Renderer(*template_folders(settings.paths.templates))
        problems = check_all(self.renderer)
        if problems:  # a broken template must stop the start, not quarantine every mail that needs it
            raise ConfigError("templates do not render (run `templates check`): " + "; ".join(problems[:3]))
        # the rule file read once: the sorter's rules and the recipient check's lenient carrier domains
        self.mailing = Mailing(settings, self.renderer, lenient_domains=self.rules.address.lenient_domains)
        self.notifier = Notifier(settings)
        self.intake = Intake(self.mailing, self.engine, self.rules, sorter_model(settings), notifier=self.notifier)
        self.after_record = after_record
        self.tokens: TokenSource | None = None  # one cached OAuth 2.0 token for IMAP and SMTP
        if "oauth2" in (settings.mailbox.auth, settings.smtp.auth):
            self.tokens = token_source(settings.oauth2, user=settings.mailbox.username)
        self.vitals = Vitals()  # what /healthz and /metrics show (bot.app.health)
        self.mailer = Mailer(settings.smtp, tokens=self.tokens)
        self.presence = Presence(self.engine)
        self.stop_event = threading.Event()
        self._send_lock = threading.Lock()  # the scheduler thread and the watcher both send
        self._wake = threading.Event()  # set by the IDLE watcher: mail may have arrived
        self._failing: set[int] = set()  # UIDs with a failure count, whose counts go once they are in the ledger
        self._alone: set[int] = set()  # UIDs of a FETCH during which the server hung up: fetched one by one

    def close(self) -> None:
        self.presence.close()

    # -- one pass ------------------------------------------------------------------------------
    def poll_once(self, mailbox: Mailbox, selected: Selected) -> list[Outcome]:
        """Take in every mail not yet taken in, flag it on the server, send what is due."""
        self._flag_leftovers(mailbox, selected.uidvalidity)
        uids = self._pending_uids(mailbox, selected)
        self.vitals.found_waiting(len(uids))
        self.vitals.reached(self.clock())
        outcomes: list[Outcome] = []
        answered: set[int] = set()  # UIDs the server gave something for (the others were expunged)
        batch = self.settings.mailbox.fetch_batch
        for start in range(0, len(uids), batch):
            chunk = uids[start : start + batch]
            done: list[Outcome] = []
            for fetched in mailbox.fetch(chunk, alone=self._alone):
                answered.add(fetched.uid)
                outcome = self._take_in(mailbox, selected, fetched)
                if outcome is None:
                    continue  # failed this time: tried again on the next pass
                self._alone.discard(outcome.uid)
                if not outcome.already:
                    self.vitals.took_in(str(outcome.action))
                    log.info("uid=%s ref=%s kinds=%s action=%s%s", outcome.uid, outcome.ref or "-",
                             ",".join(outcome.kinds) or "-", outcome.action, " reply=queued" if outcome.replied else "")
                    if self.after_record is not None:
                        self.after_record(outcome)
                done.append(outcome)
            self.vitals.reached(self.clock())
            self.send_due()
            self._flag(mailbox, selected.uidvalidity, [(o.uid, o.action or "") for o in done])
            outcomes.extend(o for o in done if not o.already)
        recorded = {o.uid for o in outcomes}
        done_with = [u for u in uids if u in self._failing and (u not in answered or u in recorded)]
        if done_with:  # in the ledger now, or gone from the server: their failure counts go
            ledger.forget_failures(self.engine, mailbox.name, selected.uidvalidity, done_with)
            self._failing.difference_update(done_with)
        ledger.finish_initial(self.engine, mailbox.name, selected.uidvalidity)
        return outcomes

    def _take_in(self, mailbox: Mailbox, selected: Selected, fetched: Fetched | FetchFailed) -> Outcome | None:
        """Take one mail in; a failure is the mail's own: counted against its UID, and after
        ledger.FAILURES_ALLOWED of them the mail is quarantined with the reason. None: try it again later.

        Network trouble and a database that cannot even count the failure propagate (reconnect, back off).
        """
        if isinstance(fetched, FetchFailed):
            uid, size, reason = fetched.uid, fetched.size, fetched.reason
        else:
            try:
                return self.intake.take_in(mailbox.name, selected.uidvalidity, fetched, self.clock())
            except NETWORK_ERRORS:
                raise
            except Exception as exc:  # database refusing this mail's data, a bug, anything the mail caused
                uid, size = fetched.uid, fetched.size
                reason = f"taking in: {type(exc).__name__}"
        return self._failed(mailbox.name, selected.uidvalidity, uid, size, reason)

    def _failed(self, mailbox: str, uidvalidity: int, uid: int, size: int, reason: str) -> Outcome | None:
        count = ledger.count_failure(self.engine, mailbox, uidvalidity, uid)
        self._failing.add(uid)
        if count < ledger.FAILURES_ALLOWED:
            log.warning("uid=%s failed (%s), attempt %s of %s", uid, _short(reason), count, ledger.FAILURES_ALLOWED)
            return None
        reason = f"failed {count} times; last: {reason}"
        ledger.quarantine(self.engine, mailbox, uidvalidity, uid, size, reason, self.clock())
        self._failing.discard(uid)
        self._alone.discard(uid)
        log.warning("uid=%s quarantined after %s failures", uid, count)
        return Outcome(uid, Action.QUARANTINED, reason=reason)

    def _blame(self, mailbox: Mailbox, uidvalidity: int | None) -> None:
        """The connection broke during a FETCH: the mails it asked for are fetched one by one from now
        on, and a mail the server hung up on alone has a failure counted (it may be what the server
        cannot read: Dovecot says BYE then), so it ends in quarantine instead of stopping every pass."""
        uids, mailbox.in_flight = mailbox.in_flight, ()
        if not uids or uidvalidity is None:
            return
        if len(uids) > 1:
            self._alone.update(uids)
            return
        try:
            outcome = self._failed(mailbox.name, uidvalidity, uids[0], 0, "the server hung up while it was fetched")
            if outcome is not None:
                self.vitals.took_in(str(outcome.action))
        except DBAPIError as exc:
            log.warning("could not count the failure: database trouble (%s)", type(exc).__name__)

    def send_due(self) -> FlushReport:
        with self._send_lock:
            report = flush(self.engine, self.mailer, self.presence, self.clock())
        self.vitals.flushed(report)
        if report.sent or report.retrying or report.failed or report.uncertain:
            log.info("outbox sent=%s retrying=%s failed=%s uncertain=%s", report.sent, report.retrying,
                     report.failed, report.uncertain)
        return report

    def sweep(self) -> None:
        """Record due follow-ups (reminders, abandonment) and send what is due."""
        try:
            sweep_once(self.engine, self.mailing, self.notifier, self.clock())
            self.send_due()
        except DBAPIError as exc:
            log.warning("follow-up sweep skipped: database trouble (%s)", trouble(exc))

    def daily_digest(self) -> None:
        now = self.clock()
        stamp = daily_digest_due(self.settings, now)
        try:
            if queue_digest(self.engine, self.notifier, now, stamp):
                log.info("daily digest %s queued", stamp)
                self.send_due()
        except DBAPIError as exc:
            log.warning("daily digest skipped: database trouble (%s)", trouble(exc))

    def mailbox(self) -> Mailbox:
        return Mailbox(self.settings.mailbox, tokens=self.tokens)

    def run_once(self) -> list[Outcome]:
        mailbox = self.mailbox()
        try:
            selected = mailbox.connect()
            return self.poll_once(mailbox, selected)
        finally:
            mailbox.close()
            self.sweep()

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> None:
        """Work until stop() is called: lead when no one else does, else send from the outbox."""
        following = False
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                if self.presence.try_lead():
                    log.info("leading: watching the mailbox and running the scheduled jobs")
                    self._lead()
                    following = False
                    delay = 1.0
                    continue
                if not following:
                    log.info("another process leads; sending from the outbox and standing by")
                    following = True
                self.send_due()
                delay = 1.0
            except DBAPIError as exc:
                log.warning("outbox skipped: database trouble (%s)", trouble(exc))
            except Exception as exc:  # nothing but stop() ends the process: back off and try again
                log.error("unexpected %s at %s; retrying in %.0f s", type(exc).__name__, _where(exc), delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.settings.mailbox.reconnect_max_seconds)
                continue
            self.stop_event.wait(self.settings.mailbox.follower_seconds)

    def _lead(self) -> None:
        scheduler = BackgroundScheduler(timezone=self.settings.zone)
        scheduler.add_job(self.sweep, "interval", seconds=self.settings.policy.sweep_seconds,
                          next_run_time=self.clock(), max_instances=1, coalesce=True)
        if self.settings.staff.digest_recipients:
            t = self.settings.staff.digest_time
            scheduler.add_job(self.daily_digest, "cron", hour=t.hour, minute=t.minute, coalesce=True,
                              misfire_grace_time=3600)
            self.daily_digest()  # a digest missed while the bot was down goes out once, now
        if self.settings.database.retention_days or self.settings.mailbox.retention_days:  # daily, and once now
            scheduler.add_job(partial(daily_retention, self.settings, self.engine, self.clock, self.tokens), "interval",
                              hours=24, next_run_time=self.clock(), max_instances=1, coalesce=True)
        scheduler.start()
        self.vitals.lead(True)
        try:
            self._watch()
        finally:
            self.vitals.lead(False)
            scheduler.shutdown(wait=True)

    def _watch(self) -> None:
        """Passes on one connection, woken by a second one that stays in IDLE (adapters.watcher)."""
        delay = 1.0
        while not self.stop_event.is_set() and self.presence.try_lead():
            mailbox = self.mailbox()
            self._wake.clear()
            watcher = Watcher(self.settings.mailbox, self._wake, tokens=self.tokens,
                              keep_going=lambda: not self.stop_event.is_set() and self.presence.leading)
            uidvalidity: int | None = None
            try:
                selected = mailbox.connect()
                uidvalidity = selected.uidvalidity
                self.vitals.reached(self.clock(), can_idle=selected.can_idle)
                log.info("watching %s (UIDVALIDITY %s, %s)", self.settings.mailbox.folder, selected.uidvalidity,
                         "IDLE" if selected.can_idle else f"polling every {self.settings.mailbox.poll_seconds}s")
                watcher.start()
                delay = 1.0
                while not self.stop_event.is_set() and self.presence.try_lead():
                    self._wake.clear()  # what is announced from now on wakes the next pass
                    busy = self._catch_up(mailbox, selected)
                    if busy and mailbox.mail_soon(self.settings.mailbox.burst_seconds):
                        continue  # mail keeps coming: look again at once
                    self._wake.wait(self.settings.mailbox.idle_renew_seconds)
            except RECONNECT_ON as exc:
                mailbox.after_trouble()
                self._blame(mailbox, uidvalidity)
                log.warning("connection trouble (%s); reconnecting in %.0f s", _why(exc), delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.settings.mailbox.reconnect_max_seconds)
            except Exception as exc:  # a pass that failed for another reason: back off, connect afresh, retry
                said = f" ({' '.join(str(exc).split())[:200]})" if isinstance(exc, IMAPClientError) else ""  # server words
                log.error("pass failed: %s at %s%s; retrying in %.0f s", type(exc).__name__, _where(exc), said, delay)
                self.stop_event.wait(delay)
                delay = min(delay * 2, self.settings.mailbox.reconnect_max_seconds)
            finally:
                watcher.stop()
                mailbox.close()

    def _catch_up(self, mailbox: Mailbox, selected: Selected) -> bool:
        """Pass until a pass takes in nothing and the server announced nothing during it; True if
        any mail was taken in. Mail that lands during a pass is announced in the answer to one of
        its commands (even to the SEARCH that does not yet list it), and IDLE does not repeat it."""
        busy = False
        while not self.stop_event.is_set():
            mailbox.announced_mail()
            took = self.poll_once(mailbox, selected)
            busy = busy or bool(took)
            if not took and not mailbox.announced_mail():
                break
        return busy

    def stop(self) -> None:
        self.stop_event.set()
        self._wake.set()

    # -- bookkeeping ---------------------------------------------------------------------------
    def _pending_uids(self, mailbox: Mailbox, selected: Selected) -> list[int]:
        cursor = ledger.cursor(self.engine, mailbox.name, selected.uidvalidity, selected.uidnext, self.clock())
        uids = set(mailbox.uids_after(cursor.last_uid))
        failing = ledger.failing(self.engine, mailbox.name, selected.uidvalidity)  # the cursor may be past them
        self._failing.update(failing)
        older = set(failing)
        if not cursor.initial_done:
            policy = self.settings.mailbox.first_start
            initial = mailbox.unseen_uids() if policy == "unseen" else mailbox.all_uids() if policy == "all" else []
            older.update(u for u in initial if u <= cursor.last_uid)
        # A mail in the ledger is never fetched again: fetching alone may be what fails (a server that
        # hangs up on a mail it cannot read), and the catch-up would otherwise fetch it on every pass.
        older -= ledger.taken_in(self.engine, mailbox.name, selected.uidvalidity, sorted(older))
        return sorted(uids | older)

    def _flag(self, mailbox: Mailbox, uidvalidity: int, outcomes: list[tuple[int, str]]) -> None:
        # Quarantined mail stays unread, so staff notice it in their mail client.
        mailbox.mark_processed([uid for uid, action in outcomes if action and action != Action.QUARANTINED])
        ledger.mark_flagged(self.engine, mailbox.name, uidvalidity, [uid for uid, _ in outcomes])

    def _flag_leftovers(self, mailbox: Mailbox, uidvalidity: int) -> None:
        """Flag mail recorded by an earlier run that stopped before it could flag it."""
        rows = ledger.unflagged(self.engine, mailbox.name, uidvalidity)
        if rows:
            self._flag(mailbox, uidvalidity, rows)


def _why(exc: BaseException) -> str:
    """For the log: a database error without its statement or parameters; other errors with their text."""
    return trouble(exc) if isinstance(exc, DBAPIError) else f"{type(exc).__name__}: {str(exc)[:200]}"
