"""Break each promised property on purpose and show that its test notices (issue 4).

For every sabotage below, the project is copied to a temporary folder (uncommitted changes
included), one line of the bot is changed to break one property, and the test that guards that
property is run there. A test that still passes is blind; the script then exits 1.

    .venv/bin/python scripts/break_on_purpose.py            # all of them (about 4 minutes)
    .venv/bin/python scripts/break_on_purpose.py loops tls  # some of them, by name
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Sabotage:
    name: str
    breaks: str  # the property, in the words of issue 4
    file: str
    old: str
    new: str
    test: tuple[str, ...]  # pytest arguments
    env: tuple[tuple[str, str], ...] = ()
    also: tuple[tuple[str, str, str], ...] = ()  # more (file, old, new) when two defences guard one property
    command: tuple[str, ...] = ()  # a check other than pytest (run from the copy; caught when it exits non-zero)


SABOTAGES = (
    Sabotage("core-imports-adapter", "rooms: the pure core never imports an adapter (make lint's import contract)",
             "bot/core/decide.py", "from bot.core.lifecycle import status_for\n",
             "from bot.adapters.tls import tls_context  # noqa: F401\nfrom bot.core.lifecycle import status_for\n",
             (), command=("lint-imports",)),
    Sabotage("core-does-io", "rooms: the pure core imports no IO library (make lint's import contract)",
             "bot/core/clock.py", "from zoneinfo import ZoneInfo\n", "from zoneinfo import ZoneInfo\nimport sqlite3  # noqa: F401\n",
             (), command=("lint-imports",)),
    Sabotage("resend-uncertain", "1 crash safety: a reply handed to SMTP before a crash is never sent twice",
             "bot/adapters/store/outbox.py", "if row.status == Delivery.CLAIMED.value:  # its final",
             "if True:  # its final",
             ("tests/test_scale_out.py", "-k", "dead_worker")),
    Sabotage("idle-eof", "2 outages: a connection cut during IDLE is noticed and nothing is missed",
             "bot/adapters/imap.py", 'raise ConnectionError("IMAP connection closed during IDLE")', "pass",
             ("tests/test_outages.py", "-k", "reset")),
    Sabotage("straggler", "2 outages: mail that lands during a pass is not left waiting for the next one",
             "bot/adapters/watcher.py", "                    self.wake.set()\n", "                    pass\n",
             ("tests/test_outages.py", "-k", "landing"),
             also=(("bot/app/service.py", "if not took and not mailbox.announced_mail():", "if True:"),
                   ("bot/adapters/imap.py", 'return bool(store.pop("EXISTS", None)) | bool(store.pop("RECENT", None))',
                    "return False"),
                   ("bot/adapters/imap.py", "            if _announces_mail(responses):\n                return True\n",
                    "            pass\n"))),
    Sabotage("flag-first", "2 outages: no mail is marked processed before it was recorded",
             "bot/app/service.py", "            for fetched in mailbox.fetch(chunk, alone=self._alone):",
             "            mailbox.mark_processed(chunk)\n            for fetched in mailbox.fetch(chunk, alone=self._alone):",
             ("tests/test_outages.py", "-k", "refusing_writes")),
    Sabotage("fetch-sets-seen", "2 outages: no mail is marked processed before it was recorded",
             "bot/adapters/imap.py", 'whole = self._command([uid for uid, _size in group], ["BODY.PEEK[]"])',
             'whole = self._command([uid for uid, _size in group], ["BODY[]"])',
             ("tests/test_outages.py", "-k", "refusing_writes")),
    Sabotage("no-retry", "2 outages: an SMTP 4xx waits in the outbox and is retried",
             "bot/app/outbox.py", 'return Delivery.PENDING, result.error, None, ""',
             'return Delivery.FAILED, result.error, None, ""',
             ("tests/test_end_to_end.py", "-k", "failed_sends and sqlite")),
    Sabotage("parser-crash", "3 broken mail: no unhandled exception, NUL bytes included",
             "bot/core/parse/__init__.py", "    try:\n        return _parse(raw, size, truncated)\n    except Exception as exc:",
             "    try:\n        assert b'\\0' not in raw\n        return _parse(raw, size, truncated)\n"
             "    except UnicodeError as exc:",
             ("tests/test_fuzz_corpus.py",), (("BOT_FUZZ_COUNT", "1000"),)),
    Sabotage("loops", "4 loops: two bots mailing each other answer at most once each",
             "bot/core/classify/suppress.py", "        return Suppress.AUTO_REPLY, evidence", "        pass",
             ("tests/test_under_fire.py", "-k", "two_bots")),
    Sabotage("no-cap", "4 floods: fifty mails from one sender get capped replies",
             "bot/app/mailing.py", "    return Limits(per_sender_per_day=p.max_auto_replies_per_sender_per_day,",
             "    return Limits(per_sender_per_day=10**6,", ("tests/test_intake.py", "-k", "reply_cap")),
    Sabotage("digest-html", "5 hostile input: HTML from mail never reaches the digest unescaped",
             "bot/compose/notices.py", 'autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False)',
             "autoescape=False", ("tests/test_digest.py",)),
    Sabotage("dmarc", "5 hostile input: dmarc=fail is flagged to staff",
             "bot/core/trust.py", '    if any(r.method == "dmarc" and r.result == "fail" for r in results):',
             "    if False:", ("tests/test_classify.py", "-k", "dmarc")),
    Sabotage("secrets", "6 privacy: a config dump masks secrets",
             "bot/settings/__init__.py", 'data[section]["password"] = "***"', "pass",
             ("tests/test_config.py", "-k", "masks")),
    Sabotage("token-renewal", "12 OAuth 2.0: a token is renewed before it expires, not after",
             "bot/adapters/oauth2.py", "if self._token is not None and now < renew_at(self._token, self.margin):",
             "if self._token is not None and now < self._token.expires_at:",
             ("tests/test_oauth2_tokens.py", "-k", "renewed_before")),
    Sabotage("token-refused-once", "12 OAuth 2.0: a token the server refuses is renewed once (IMAP and SMTP)",
             "bot/adapters/imap.py", "                if attempt == 1:\n", "                if False:\n",
             ("tests/test_oauth2_mail.py", "-k", "expired_tokens"),
             also=(("bot/adapters/smtp.py", "            if attempt == 1:\n", "            if False:\n"),)),
    Sabotage("bye-token", "12 OAuth 2.0: a session ended by BYE AccessTokenExpired reconnects with a new token",
             "bot/adapters/imap.py", 'return "token" in lowered or "expired" in lowered', "return False",
             ("tests/test_oauth2_mail.py", "-k", "bye")),
    Sabotage("healthz-mailbox", "12 health: /healthz turns 503 within two renewals of the mailbox going away",
             "bot/core/health.py", "        elif ago > limit:", "        elif False:",
             ("tests/test_health.py", "-k", "two_renewals")),
    Sabotage("healthz-token", "12 health: a refresh token that stops working turns /healthz 503",
             "bot/core/health.py", "    if seen.token_error:", "    if False:",
             ("tests/test_oauth2_mail.py", "-k", "revoked")),
    Sabotage("token-in-log", "12 OAuth 2.0: no token or secret in the log, even at DEBUG",
             "bot/adapters/oauth2.py", 'log.debug("oauth2: new access token from %s, valid for %.0f s", self.provider,',
             'log.debug("oauth2: new access token %s from %s, valid for %.0f s", token.value, self.provider,',
             ("tests/test_oauth2_mail.py", "-k", "logs_no_token")),
    Sabotage("tls", "6 privacy: TLS certificates are checked by default",
             "bot/settings/sections.py", "    tls_verify: bool = True  # turn off only", "    tls_verify: bool = False  # turn off only",
             ("tests/test_mailbox.py", "-k", "tls")),
    # issue 13, the staff console's promises (SPEC section 6)
    Sabotage("console-session", "13 console: every page but /login and /healthz needs a session (303 to /login)",
             "bot/web/app.py", "            if account is None:\n", "            if account is None and role is Role.ADMIN:\n",
             ("tests/test_console_security.py", "-k", "every_page_but_login")),
    Sabotage("console-csrf", "13 console: a POST without the session's CSRF token answers 403 and changes nothing",
             "bot/web/app.py", "            if not csrf_ok(request.session, form.get(CSRF_FIELD)):", "            if False:",
             ("tests/test_console_security.py", "-k", "csrf_token")),
    Sabotage("console-viewer", "13 console: a viewer's POST answers 403 and changes nothing",
             "bot/web/app.py", "            if not may(account.role, role):", "            if False:",
             ("tests/test_console_security.py", "-k", "viewer")),
    Sabotage("console-throttle", "13 console: after 5 failed sign-ins an account waits 15 minutes",
             "bot/core/signin.py", "MAX_FAILURES = 5\n", "MAX_FAILURES = 50\n",
             ("tests/test_console_security.py", "-k", "five_failed")),
    Sabotage("console-cookie", "13 console: the session cookie is Secure unless the console is on loopback",
             "bot/settings/sections.py", 'return self.public_url.startswith("https://") or self.host.strip("[]").lower() not in LOOPBACK',
             "return False", ("tests/test_console_security.py", "-k", "cookie")),
    Sabotage("console-escape", "13 console: customer text is always escaped",
             "bot/web/app.py", 'jinja2.PackageLoader("bot.web", "templates"), autoescape=True,',
             'jinja2.PackageLoader("bot.web", "templates"), autoescape=False,',
             ("tests/test_console_security.py", "-k", "escaped")),
    Sabotage("console-csp", "13 console: a Content-Security-Policy forbids inline scripts",
             "bot/web/security.py", '    ("Content-Security-Policy", CSP),\n',
             '    ("Content-Security-Policy", "default-src * \'unsafe-inline\'"),\n',
             ("tests/test_console_security.py", "-k", "content_security")),
    Sabotage("console-argon2id", "13 console: passwords are stored with Argon2id",
             "bot/staff/accounts.py", "_HASHER = PasswordHasher()  # Argon2id",
             '_HASHER = PasswordHasher(type=__import__("argon2").Type.I)  # Argon2id',
             ("tests/test_console_security.py", "-k", "argon2id")),
    Sabotage("console-dates", "13 console: a date in the future, or before the case was opened, is refused",
             "bot/core/clock.py", "    if not allow_future and day > now.astimezone(zone).date():", "    if False:",
             ("tests/test_console_rules.py", "-k", "dates_staff_give")),
    Sabotage("console-waiting", "13 console: a customer's answer waits in the queue and the digest until staff act",
             "bot/core/lifecycle.py", "            waiting = state.customer_waiting_since or event.at",
             "            waiting = None", ("tests/test_console_actions.py", "-k", "customers_answer and sqlite")),
    Sabotage("console-logs", "13 console / 6 privacy: the console's log carries no address typed into a path or search",
             "bot/web/app.py", 'log.info("%s %s%s -> %s %.0f ms", request.method, handler.__name__,',
             'log.info("%s %s%s -> %s %.0f ms", request.method, request.url.path + "?" + request.url.query,',
             ("tests/test_console_security.py", "-k", "logs")),
    Sabotage("console-asked-again", "13 console: documents found insufficient restart the clock of reminders and abandonment",
             "bot/adapters/store/reads.py", "CaseView(r.ref, Status(r.status), r.documents_requested_at or r.opened_at,",
             "CaseView(r.ref, Status(r.status), r.opened_at,", ("tests/test_console_rules.py", "-k", "abandonment")),
    Sabotage("console-actor", "13 console: every action is written to the case history with the account's name",
             "bot/web/pages.py", "    actor = ctx.account.name\n", '    actor = "staff"\n',
             ("tests/test_console_actions.py", "-k", "routine and sqlite")),
    Sabotage("sorter-negation", "11 sorting: a negated request (\"don't delete my account\") is no request",
             "bot/core/classify/negation.py", "    phrase = text[start:end]\n", "    return False\n",
             ("tests/test_sorter.py", "-k", "negat")),
    Sabotage("sorter-legal-footer", "11 sorting: a legal notice (\"if you received this in error, delete it\") is not read",
             "bot/core/classify/text.py", "kept = _drop_signature_block(_drop_legal_notices(kept))",
             "kept = _drop_signature_block(kept)", ("tests/test_sorter.py", "-k", "own_words or legal_footer")),
    Sabotage("sorter-reply-subject", "11 sorting: a reply's quoted subject (\"Re: Delete my account\") is not read",
             "bot/core/classify/__init__.py", "if is_reply_subject(subject) and body.strip():", "if False:",
             ("tests/test_sorter.py", "-k", "own_words")),
    Sabotage("sorter-threshold", "11 sorting: a low-confidence guess never sends the request form",
             "bot/core/classify/__init__.py", "            if p >= high or", "            if p >= low or",
             ("tests/test_sorter.py", "-k", "confidence")),
    Sabotage("sorter-model-unused", "11 sorting: the running bot sorts with the shipped model",
             "bot/settings/files.py", "    return load_model(Path(given) if given else default_model_path())",
             "    return None", ("tests/test_sorting_shell.py", "-k", "shipped_model and sqlite")),
    Sabotage("never-reply-returned-part", "11 never reply: a returned message with delivery-failure wording",
             "bot/core/classify/suppress.py", "    if returned:", "    if False:",
             ("tests/test_sorting_shell.py", "-k", "never_reply_mail_is_suppressed")),
    Sabotage("corrections-purge", "11 privacy: the retention purge erases the text of staff corrections",
             "bot/adapters/store/retention.py", '.values(text=None, actor=""))', '.values(actor=""))',
             ("tests/test_sorting_shell.py", "-k", "unsure_mail and sqlite")),
    Sabotage("migration-missing", "12 upgrades: a table change without a migration is caught",
             "bot/adapters/store/tables.py", '    flags: str = ""  # comma-separated warnings for staff, e.g. dmarc_fail\n',
             '    flags: str = ""  # comma-separated warnings for staff, e.g. dmarc_fail\n    note: str = ""\n',
             ("tests/test_migrations.py", "-k", "models_and_migrations and sqlite")),
    Sabotage("old-schema-runs", "12 upgrades: run and the staff commands refuse an older schema, naming db upgrade",
             "bot/adapters/store/engine.py", "        _require(state)\n    except BaseException:",
             "        pass\n    except BaseException:",
             ("tests/test_migrations.py", "-k", "refuse_a_database_of_an_earlier_release and sqlite")),
    Sabotage("upgrade-half-done", "12 upgrades: a failed upgrade changes nothing (SQLite DDL in one transaction)",
             "bot/adapters/store/migrations/__init__.py",
             'event.listen(ddl, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))', "pass",
             ("tests/test_migrations.py", "-k", "one_transaction and sqlite")),
    Sabotage("admin-template-loses", "12 install: a file in the admin's templates folder wins over the packaged one",
             "bot/compose/templates.py", 'encoding="utf-8") for folder in folders),',
             'encoding="utf-8") for folder in reversed(folders)),',
             ("tests/test_template_override.py", "-k", "admins_file_wins")),
    Sabotage("helvetica-not-embedded", "12 fonts: every font of the form is embedded (no default Helvetica)",
             "bot/compose/form_pdf.py", "pageCompression=1, initialFontName=LATIN_FONT)", "pageCompression=1)",
             ("tests/test_form_pdf.py", "-k", "every_font_is_embedded")),
    Sabotage("japanese-font-not-embedded", "12 fonts: the Japanese text renders on a machine without Japanese fonts",
             "bot/compose/form_pdf.py", 'JA_FONT = "IPAexGothic"', 'JA_FONT = "HeiseiKakuGo-W5"',
             ("tests/test_form_pdf.py", "-k", "renders_on_a_machine_without_fonts"),
             also=(("bot/compose/form_pdf.py",
                    '    pdfmetrics.registerFont(_embedded(JA_FONT, str(font_file("ipaexg.ttf")), ascii_readable=False))',
                    "    from reportlab.pdfbase.cidfonts import UnicodeCIDFont\n"
                    "    pdfmetrics.registerFont(UnicodeCIDFont(JA_FONT))"),)),
    Sabotage("wheel-without-templates", "12 install: the wheel carries the templates, so an install answers mail",
             "pyproject.toml", '"bot.defaults" = ["*.toml", "templates/*.j2",', '"bot.defaults" = ["*.toml", "templates/x",',
             ("tests/test_install.py", "-k", "packaged_templates")),
    Sabotage("init-overwrites", "12 install: init never overwrites an admin's file",
             "bot/cli/init.py", "    there = [path for path, _ in plan.files if path.exists() or path.is_symlink()]",
             "    there: list[Path] = []", ("tests/test_init.py", "-k", "never_overwrites"),
             also=(("bot/cli/init.py", "os.O_WRONLY | os.O_CREAT | os.O_EXCL", "os.O_WRONLY | os.O_CREAT | os.O_TRUNC"),)),
    # issue 10: erasure and logs
    Sabotage("purge-keeps-normalised-recipient", "10 erasure: the outbox's normalised recipient goes with the address",
             "bot/adapters/store/retention.py", '_rehash(conn, _OUTBOX, outbox_where, ("to_norm",), to_addr=ERASED, to_domain=""',
             "_rehash(conn, _OUTBOX, outbox_where, (), to_addr=ERASED, to_domain=\"\"",
             ("tests/test_retention.py", "-k", "any_table and sqlite")),
    Sabotage("purged-mail-answered-again", "10 erasure: a mail taken in before a purge is still a duplicate after it",
             "bot/adapters/store/cases.py", "col(MessageRow.message_id).in_([message_id, message_key(message_id)])",
             "col(MessageRow.message_id).in_([message_id])",
             ("tests/test_retention.py", "-k", "any_table and sqlite")),
    Sabotage("purge-skips-caseless", "10 erasure: the purge also erases mail that never became a case",
             "bot/adapters/store/retention.py",
             "or_(m.case_id.in_(old_cases), and_(m.case_id.is_(None), m.recorded_at < cutoff))",
             "m.case_id.in_(old_cases)",
             ("tests/test_retention.py", "-k", "any_table and sqlite")),
    Sabotage("purge-keeps-staff-mail", "10 erasure: digests and staff notices older than the retention are erased",
             "bot/adapters/store/retention.py",
             "or_(o.case_id.in_(old_cases), and_(o.case_id.is_(None), o.created_at < cutoff))",
             "o.case_id.in_(old_cases)",
             ("tests/test_retention.py", "-k", "any_table and sqlite")),
    Sabotage("purge-keeps-event-details", "10 erasure: the purged cases' history details (reasons, senders) go",
             "bot/adapters/store/retention.py", 'conn.execute(update(_EVENTS).where(events_where).values(detail=""))',
             "pass", ("tests/test_retention.py", "-k", "any_table and sqlite")),
    Sabotage("no-vacuum", "10 erasure: after a purge the erased text is not left in the SQLite file's free space",
             "bot/adapters/store/retention.py", '        conn.execute("VACUUM")\n', "",
             ("tests/test_retention.py", "-k", "sqlite_files")),
    Sabotage("wal-kept", "10 erasure: the erased text is not left in the SQLite WAL file",
             "bot/adapters/store/retention.py",
             '        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")\n        conn.execute("VACUUM")\n'
             '        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()\n',
             '        conn.execute("VACUUM")\n        busy = None\n',
             ("tests/test_retention.py", "-k", "sqlite_files")),
    Sabotage("retention-not-daily", "10 erasure: `run` purges daily when database.retention_days is set",
             "bot/app/service.py", "if self.settings.database.retention_days or self.settings.mailbox.retention_days:",
             "if False:", ("tests/test_mailbox_retention.py", "-k", "daily")),
    Sabotage("mailbox-retention-unprocessed", "10 erasure: mailbox retention takes only mail the bot processed",
             "bot/adapters/mailbox_retention.py", "[u for u in _older(client, before) if u in wanted]",
             "_older(client, before)", ("tests/test_mailbox_retention.py", "-k", "nothing_else")),
    Sabotage("sql-parameters-shown", "10 logs: a database error never carries its SQL parameters",
             "bot/adapters/store/engine.py", '{"hide_parameters": True}', '{"hide_parameters": False}',
             ("tests/test_private_logs.py", "-k", "never_carry")),
    Sabotage("db-error-logged-whole", "10 logs: the database failing mid-write logs no address, subject or body",
             "bot/app/service.py", "return trouble(exc) if isinstance(exc, DBAPIError) else",
             "return str(exc) if isinstance(exc, DBAPIError) else",
             ("tests/test_private_logs.py", "-k", "mid_write and sqlite"),
             also=(("bot/adapters/store/engine.py", '{"hide_parameters": True}', '{"hide_parameters": False}'),)),
    Sabotage("smtp-recipient-logged", "10 logs: an SMTP refusal quoting the recipient does not put it in the log",
             "bot/app/outbox.py", "row.id, row.case_id, brief(result.error))\n            return Delivery.FAILED",
             "row.id, row.case_id, result.error)\n            return Delivery.FAILED",
             ("tests/test_private_logs.py", "-k", "smtp_refusal"),
             also=(("bot/cli/__init__.py", "return ADDRESS.sub(MASK, super().format(record))",
                    "return super().format(record)"),)),
    Sabotage("world-readable-db", "10 files: the database file the bot makes is 0600, its folder 0700",
             "bot/adapters/store/engine.py", "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600", "os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644",
             ("tests/test_private_logs.py", "-k", "private"),
             also=(("bot/adapters/store/engine.py", "old = os.umask(0o077)", "old = os.umask(0o022)"),)),
    # issue 10: containment
    Sabotage("partial-reserialise", "10 containment: a mail fetched in part is its own header bytes, never re-serialised",
             "bot/adapters/imap.py",
             'top = _SENDER_CONTENT.sub(b"X-Original-", header.rstrip(b"\\r\\n")) + b"\\r\\n" + own + b"\\r\\n"',
             'top = __import__("email.parser").parser.BytesHeaderParser(policy=__import__("email.policy").policy.SMTP)'
             '.parsebytes(header).as_bytes().rstrip(b"\\r\\n") + b"\\r\\n" + own + b"\\r\\n"',
             ("tests/test_hostile_fetch.py", "-k", "nested_parens")),
    Sabotage("fail-forever", "10 containment: a mail that failed 3 times is quarantined and not fetched again",
             "bot/app/service.py", "        if count < ledger.FAILURES_ALLOWED:", "        if True:",
             ("tests/test_hostile_run.py", "-k", "poison")),
    Sabotage("refetch-ledger", "10 containment: a mail in the ledger is never fetched again (also in the first catch-up)",
             "bot/app/service.py",
             "        older -= ledger.taken_in(self.engine, mailbox.name, selected.uidvalidity, sorted(older))",
             "        older -= set()", ("tests/test_hostile_run.py", "-k", "poison")),
    Sabotage("hangup-unblamed", "10 containment: a mail the server hangs up on is counted against its UID",
             "bot/app/service.py", "                self._blame(mailbox, uidvalidity)\n", "                pass\n",
             ("tests/test_hostile_run.py", "-k", "poison")),
    Sabotage("pass-ends-run", "10 containment: a pass that fails for a reason not the network backs off and retries",
             "bot/app/service.py",
             "            except Exception as exc:  # a pass that failed for another reason: back off, connect afresh, retry",
             "            except ZeroDivisionError as exc:", ("tests/test_hostile_run.py", "-k", "backs_off"),
             also=(("bot/app/service.py",
                    "            except Exception as exc:  # nothing but stop() ends the process: back off and try again",
                    "            except ZeroDivisionError as exc:"),)),
    Sabotage("fetch-budget", "10 memory: whole mails in one FETCH add up to at most mailbox.fetch_batch_bytes",
             "bot/adapters/imap.py", "or sum(s for _u, s in group) + size > self.settings.fetch_batch_bytes):",
             "or False):", ("tests/test_hostile_fetch.py", "-k", "byte_budget")),
    Sabotage("header-uncapped", "10 memory: the header fetch of a mail fetched in part is capped",
             "bot/adapters/imap.py", 'f"BODY.PEEK[HEADER]<0.{MAX_FETCHED_HEADER}>"', '"BODY.PEEK[HEADER]"',
             ("tests/test_hostile_fetch.py", "-k", "megabyte_header")),
    Sabotage("quadratic-signature", "10 CPU: signature stripping reads each line a bounded number of times",
             "bot/core/classify/text.py", "        stripped = line.strip()\n",
             "        stripped = line.strip()\n        _ = [_SEPARATOR.match(x) for x in lines[i + 1 :]]\n",
             ("tests/test_hostile_text.py", "-k", "bounded and signature")),
    Sabotage("demo-rmtree", "10 demo: demo --dir refuses a folder it did not make and deletes nothing",
             "bot/demo/__init__.py", "        if not (directory / MARKER).is_file():", "        if False:",
             ("tests/test_hostile_demo.py", "-k", "refuses")),
    Sabotage("demo-markup", "10 demo: text from a mail is printed as plain text, never as rich markup",
             "bot/demo/__init__.py", "        self.console.print(Text.assemble(*parts), highlight=False)",
             '        self.console.print("".join(p if isinstance(p, str) else p[0] for p in parts), highlight=False)',
             ("tests/test_hostile_demo.py", "-k", "plain_text")),
    # issue 10: trust
    Sabotage("trust-sorter-fails-open", "10 trust: an exception while sorting sends nothing (fails closed)",
             "bot/core/classify/__init__.py",
             "    except Exception as exc:  # a bug or an input nobody foresaw (RecursionError...): send nothing",
             "    except ZeroDivisionError as exc:  # a bug or an input nobody foresaw (RecursionError...): send nothing",
             ("tests/test_classify.py", "-k", "fails_closed")),
    Sabotage("trust-recipient-unchecked", "10 trust: every recipient is checked right before it enters the outbox",
             "bot/adapters/store/outbox.py", "    if not problem:\n        return False\n",
             "    if True:\n        return False\n", ("tests/test_trust.py", "-k", "every_recipient and sqlite")),
    Sabotage("trust-reply-to-unauthenticated", "10 trust: Reply-To is used only for an authenticated sender",
             "bot/core/trust.py", "    if verdict is Verdict.PASS and reply_to:", "    if reply_to:",
             ("tests/test_trust.py", "-k", "unauthenticated_sender and sqlite")),
    Sabotage("trust-any-authserv", "10 trust: only the trusted servers' Authentication-Results are read",
             "bot/core/trust.py", "        if server not in trusted:\n            break\n",
             "        if False:\n            break\n", ("tests/test_classify.py", "-k", "reply_to_only_for or dmarc_flag")),
    Sabotage("trust-echo", "10 trust: an unauthenticated sender's display name and subject are not echoed",
             "bot/compose/context.py", "    verified = case.sender_verified\n", "    verified = True\n",
             ("tests/test_trust.py", "-k", "unauthenticated_sender and sqlite")),
    Sabotage("trust-dmarc-fail-answered", "10 trust: dmarc=fail from a trusted server: a flagged case, no mail",
             "bot/core/decide.py", "    if Flag.DMARC_FAIL in sorted_.flags:", "    if False:",
             ("tests/test_trust.py", "-k", "dmarc_fail and sqlite")),
    Sabotage("trust-cap-exact-address", "10 trust: the limits count normalised addresses (+tag, case)",
             "bot/adapters/store/outbox.py", "capped(per_sender, o.to_norm == norm, o.created_at >= day),",
             "capped(per_sender, o.to_addr == address, o.created_at >= day),", ("tests/test_trust.py", "-k", "limits and sqlite")),
    Sabotage("trust-staff-told-often", "10 trust: staff are told once per limit and period, not once per mail",
             "bot/app/notify.py", '    return f"<limit-{name}-{period}.{index}@{domain}>"',
             '    return f"<limit-{name}-{period}.{index}.{__import__(\'secrets\').token_hex(4)}@{domain}>"',
             ("tests/test_trust.py", "-k", "limits and sqlite")),
    Sabotage("trust-reminder-unacknowledged", "10 trust: reminders go only to cases whose acknowledgement was sent",
             "bot/core/followups.py", "        if reached and case.acknowledged:", "        if reached:",
             ("tests/test_sweep.py", "tests/test_followups.py", "-k", "acknowledgement and not postgresql")),
    Sabotage("trust-reminder-uncounted", "10 trust: reminders count toward the limits on automatic mail",
             "bot/app/sweep.py", "automatic=True, inquiry_subject=case.subject), now)",
             "automatic=False, inquiry_subject=case.subject), now)",
             ("tests/test_sweep.py", "-k", "sent_acknowledgement and sqlite")),
    Sabotage("trust-anyone-joins", "10 trust: a mail joins a case only when it comes from the case's requester",
             "bot/core/decide.py", "        if from_requester(mail, sorted_, known.case_requester):", "        if True:",
             ("tests/test_intake.py", "-k", "only_the_requester and sqlite")),
    Sabotage("trust-guessable-ids", "10 trust: the bot's Message-IDs cannot be guessed",
             "bot/compose/message.py", '    return f"<{secrets.token_hex(16)}@{host}>"',
             '    return f"<{hashlib.sha256(host.encode()).hexdigest()[:32]}@{host}>"',
             ("tests/test_compose.py", "-k", "random")),
    Sabotage("trust-forged-flood", "10 trust: 20 forged mails in a day give the victim at most 9 mails in 60 days",
             "bot/core/trust.py", '    local = local.split("+", 1)[0] or local\n', "    local = local\n",
             ("tests/test_two_months.py", "-k", "forged and sqlite")),
    Sabotage("bench-rots", "14 benchmarks: every bench module still runs against the code it measures",
             "bench/viewprobe.py", "    import bot.core.digest\n", "    import bot.compose.digest  # noqa: F401\n",
             ("tests/test_bench_modules.py", "-k", "view_probe")),
    Sabotage("staff-views-load-orm", "14 start-up: cases list and digest --print read through Core, without SQLModel",
             "bot/adapters/store/reads.py", "from bot.adapters.store.types import UTCDateTime\n",
             "from bot.adapters.store.types import UTCDateTime\nfrom bot.adapters.store import tables  # noqa: F401\n",
             ("tests/test_store_reads.py", "-k", "without_the_orm")),
    Sabotage("reads-wrong-column", "14 start-up: the Core reads name only columns the ORM tables have",
             "bot/adapters/store/reads.py", 'column("acknowledged_at", UTCDateTime),', 'column("acknowledged", UTCDateTime),',
             ("tests/test_store_reads.py", "-k", "column")),
    Sabotage("settings-env-ignored", "14 start-up: BOT_<SECTION>__<KEY> still overrides the file without pydantic-settings",
             "bot/settings/__init__.py", "        node[path[-1]] = _env_value(value)\n", "        pass\n",
             ("tests/test_config.py", "-k", "environment")),
    Sabotage("ack-not-stamped", "14 digest: a case is acknowledged once its acknowledgement is sent (the digest reads it)",
             "bot/adapters/store/outbox.py", 'if row.purpose == "ack" and row.case_id is not None:', "if False:",
             ("tests/test_digest.py", "-k", "acknowledged_when")),
    Sabotage("limits-uncapped-wrong", "10 trust / 14 drain: each limit is counted up to the limit itself, no less",
             "bot/app/mailing.py", "caps=(limits.per_sender_per_day, limits.per_domain_per_hour, limits.per_hour)",
             "caps=(limits.per_sender_per_day, limits.per_domain_per_hour - 1, limits.per_hour)",
             ("tests/test_trust.py", "-k", "limits and sqlite")),
    Sabotage("sorter-no-char-grams", "11 sorting: the held-out test parts sort at least as well as when measured",
             "bot/core/classify/features.py", "    out.update(char_features(text))\n", "",
             ("tests/test_sorting_shell.py", "-k", "does_not_regress")),
    Sabotage("form-stamp-footer", "14 drain: a form stamped from a template carries its own reference on every page",
             "bot/compose/form_pdf.py", "        for at in self.ref_at:\n", "        for at in self.ref_at[:2]:\n",
             ("tests/test_form_pdf.py", "-k", "stamped_form_is_the_form")),
    Sabotage("form-stamp-shared-id", "14 drain: each stamped form has a document /ID of its own",
             "bot/compose/form_pdf.py", "        for at in self.ids_at:\n            out[at : at + 32] = ident\n", "",
             ("tests/test_form_pdf.py", "-k", "own_id")),
    Sabotage("template-version-blind-to-includes", "13 evidence / 14 drain: a template's version follows what it includes",
             "bot/compose/versions.py", "        todo.extend(_referenced(env, source))\n", "",
             ("tests/test_template_versions.py",)),
    Sabotage("staff-date-ignores-inquiry", "13 console: a staff date may go back to the inquiry's own Date (mail that waited)",
             "bot/staff/actions.py", "    if sent is None or not case.opened_at - INQUIRY_DATE_TRUSTED <= sent < case.opened_at:",
             "    if True:", ("tests/test_console_rules.py", "-k", "inquiry")),
    Sabotage("sorter-model-stale", "11 sorting: the shipped model was trained on the development set as it is",
             "tests/data/sorting/dev.jsonl", "one of our customers wants his data deleted. Do we handle",
             "one of our customers wants his data removed. Do we handle",
             ("tests/test_sorter.py", "-k", "trained_on_the_development_set")),
)


def run(sabotage: Sabotage, python: str) -> tuple[bool, str, float]:
    with tempfile.TemporaryDirectory(prefix=f"sabotage-{sabotage.name}-") as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", ".*_cache",
                                                                  "demo-data", "results"))
        for file, before, after in ((sabotage.file, sabotage.old, sabotage.new), *sabotage.also):
            target = copy / file
            text = target.read_text()
            if text.count(before) != 1:
                return False, f"sabotage no longer applies: {before!r} found {text.count(before)}x in {file}", 0.0
            target.write_text(text.replace(before, after))
        env = {**os.environ, "PYTHONPATH": str(copy), **dict(sabotage.env)}
        corpus = ROOT.parent / "shared" / "corpus" / "real"
        if corpus.is_dir():  # the copy is elsewhere, so point the tests at the corpus
            env.setdefault("BOT_CORPUS_DIR", str(corpus))
        started = time.monotonic()
        if sabotage.command:
            tool = str(Path(python).parent / sabotage.command[0])
            result = subprocess.run([tool, *sabotage.command[1:]], cwd=copy, env=env, capture_output=True,
                                    text=True, timeout=600)
            took = time.monotonic() - started
            summary = next((line for line in result.stdout.splitlines() if "broken" in line), "(no verdict)")
            return result.returncode != 0 and "0 broken" not in summary, summary.strip(), took
        result = subprocess.run([python, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *sabotage.test],
                                cwd=copy, env=env, capture_output=True, text=True, timeout=600)
        took = time.monotonic() - started
        summary = (result.stdout.strip().splitlines() or ["(no output)"])[-1]
        caught = result.returncode == 1 and "failed" in summary  # failed, not errored or skipped
        return caught, summary, took


def main(names: list[str]) -> int:
    python = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
    chosen = [s for s in SABOTAGES if not names or s.name in names]
    blind = 0
    for sabotage in chosen:
        caught, summary, took = run(sabotage, python)
        blind += not caught
        verdict = "caught" if caught else "NOT CAUGHT"
        print(f"{verdict:10} {sabotage.name:16} {took:5.0f}s  {sabotage.breaks}\n"
              f"{'':28}{sabotage.file}; {' '.join(sabotage.command or sabotage.test)} -> {summary}", flush=True)
    print(f"\n{len(chosen) - blind} of {len(chosen)} sabotages caught by their tests")
    return 1 if blind else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
