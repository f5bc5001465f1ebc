"""OAuth 2.0 sign-in for real (SPEC section 7, issue 12): Dovecot's oauth2 passdb checks each token at
the test token server's introspection endpoint (HTTPS, test CA), and the SMTP sink accepts AUTH
XOAUTH2 only with a token that server issued. The adapters first, in-process; then the bot as
deployed (`run --once`, `run`) with a good token, a wrong secret, expired and revoked tokens, and an
IDLE session that the server ends with Microsoft's `BYE ... AccessTokenExpired`."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.adapters.imap import Mailbox
from bot.adapters.oauth2 import token_source
from bot.adapters.smtp import Envelope, Mailer, SendOutcome
from bot.core.errors import MailboxError
from bot.settings import MailboxSettings, OAuth2Settings, SmtpSettings
from tests.botrun import (
    DELETE,
    bot,
    bot_process,
    edit_config,
    http_get,
    wait_for_line,
    wait_status,
    wait_until,
    write_config,
)
from tests.factories import mail_bytes
from tests.mailservers import Dovecot, DovecotOAuth2, free_ports
from tests.oauth_server import OAuthServer
from tests.proxy import FaultyProxy

pytestmark = pytest.mark.integration

CLIENT, SECRET = "bot-app", "app-secret-Zq81"


def _inquiry(tag: str) -> bytes:
    return mail_bytes(sender=f"{tag}@example.com", subject=f"Request {tag}", message_id=f"<{tag}@customer.test>",
                      body="Please delete my personal data.")


def _replied(sink, tag: str) -> int:
    return sum(str(m.message["In-Reply-To"]) == f"<{tag}@customer.test>" for m in sink.messages())


def _wait_reply(sink, tag: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _replied(sink, tag):
            return True
        time.sleep(0.05)
    return False


def _unseen(dovecot: Dovecot) -> int:
    c = dovecot.client()
    try:
        c.select_folder("INBOX", readonly=True)
        return len(c.search(["UNSEEN"]))
    finally:
        c.logout()


def _wait_unseen(dovecot: Dovecot, count: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _unseen(dovecot) == count:
            return True
        time.sleep(0.1)
    return False


def _oauth_config(oauth: OAuthServer, ca: Path, **oauth2: Any) -> dict[str, dict[str, Any]]:
    values = {"provider": "generic", "token_url": oauth.token_url, "client_id": CLIENT, "client_secret": SECRET,
              "ca_file": str(ca), **oauth2}
    return {"mailbox": {"auth": "oauth2", "password": DELETE}, "smtp": {"auth": "oauth2", "username": "bot"},
            "oauth2": values}


@pytest.fixture
def oauth_sink(make_smtp_sink, oauth: OAuthServer):
    """An SMTP sink that takes mail only after AUTH XOAUTH2 with a token the token server issued."""
    return make_smtp_sink(xoauth2=lambda user, token: oauth.valid(token, user))


# -- the adapters, in-process ---------------------------------------------------------------------------


def _source(oauth: OAuthServer, ca: Path, **values: Any):
    values = {"token_url": oauth.token_url, "client_id": CLIENT, "client_secret": SECRET, "ca_file": str(ca),
              **values}
    return token_source(OAuth2Settings(**values), user="bot")


def _box(dovecot: Dovecot, tokens, port: int | None = None) -> Mailbox:
    return Mailbox(MailboxSettings(host="127.0.0.1", port=port or dovecot.port, security="none", username="bot",
                                   auth="oauth2"), tokens=tokens)


def test_imap_xoauth2_renews_a_refused_token_once(oauth_mailbox: Dovecot, oauth: OAuthServer, test_ca,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    oauth.add_client(CLIENT, SECRET, user="bot")
    tokens = _source(oauth, test_ca.cert)
    box = _box(oauth_mailbox, tokens)
    box.connect()
    box.close()
    assert oauth.grants == {"client_credentials": 1} and oauth.introspections == 1
    oauth.expire_all()  # the server ends the token before the bot's clock says so
    with caplog.at_level(logging.WARNING):
        box.connect()
    box.close()
    assert oauth.grants == {"client_credentials": 2}
    assert "renewing the token once" in caplog.text


def test_imap_refused_twice_is_a_mailbox_error_naming_the_code(oauth_mailbox: Dovecot, oauth: OAuthServer,
                                                               test_ca) -> None:
    oauth.add_client(CLIENT, SECRET, user="alice")  # the app may open alice's mailbox, not the bot's
    box = _box(oauth_mailbox, _source(oauth, test_ca.cert))
    with pytest.raises(MailboxError, match="refused with a renewed token"):
        box.connect()
    assert oauth.grants == {"client_credentials": 2}  # renewed once, then given up
    box = _box(oauth_mailbox, _source(oauth, test_ca.cert, client_secret="wrong"))
    with pytest.raises(MailboxError, match="invalid_client") as err:
        box.connect()
    assert "secret provided" in str(err.value) and "wrong" not in str(err.value)


def test_imap_oauthbearer_when_the_server_offers_only_that(oauth: OAuthServer, test_ca, tls_cert) -> None:
    import shutil
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="bot-test-dovecot-bearer-"))
    dovecot = Dovecot(cert=tls_cert, oauth2=DovecotOAuth2(oauth.introspection_url, test_ca.cert, "oauthbearer"))
    try:
        dovecot.start(directory)
        oauth.add_client(CLIENT, SECRET, user="bot")
        box = _box(dovecot, _source(oauth, test_ca.cert))
        box.connect()
        assert box.client.has_capability("IMAP4REV1")
        box.close()
        assert oauth.introspections == 1
        assert "method=OAUTHBEARER" in dovecot.log_path.read_text()
    finally:
        dovecot.stop()
        shutil.rmtree(directory, ignore_errors=True)


def test_smtp_xoauth2_renews_a_refused_token_and_a_refusal_is_a_retry(oauth: OAuthServer, oauth_sink,
                                                                       test_ca, aio) -> None:
    oauth.add_client(CLIENT, SECRET, user="bot")
    tokens = _source(oauth, test_ca.cert)
    mailer = Mailer(SmtpSettings(host="127.0.0.1", port=oauth_sink.port, security="none", auth="oauth2",
                                 username="bot", from_address="privacy@bot.test", connections=1), tokens=tokens)
    raw = _inquiry("smtp1")
    assert [r.outcome for r in aio.run(mailer.send_many([Envelope(1, "a@example.com", raw)]))] == [SendOutcome.SENT]
    oauth.expire_all()
    assert [r.outcome for r in aio.run(mailer.send_many([Envelope(2, "a@example.com", raw)]))] == [SendOutcome.SENT]
    assert oauth_sink.auth_attempts == [("bot", True), ("bot", False), ("bot", True)]
    oauth.add_client(CLIENT, SECRET, user="alice")  # tokens no longer for the bot: refused even when renewed
    oauth.expire_all()
    results = aio.run(mailer.send_many([Envelope(3, "a@example.com", raw)]))
    assert [r.outcome for r in results] == [SendOutcome.RETRY] and "535" in results[0].error
    assert len(oauth_sink.messages()) == 2


# -- the bot as deployed -----------------------------------------------------------------------------------


def test_run_once_answers_through_xoauth2_and_logs_no_token(tmp_path: Path, oauth_mailbox: Dovecot,
                                                            oauth: OAuthServer, oauth_sink, test_ca) -> None:
    oauth.add_client(CLIENT, SECRET, user="bot")
    rt = oauth.issue_refresh_token(CLIENT, "bot")
    cfg = write_config(tmp_path, imap_port=oauth_mailbox.port, smtp_port=oauth_sink.port,
                       db_url=f"sqlite:///{tmp_path}/bot.db", overrides=_oauth_config(oauth, test_ca.cert))
    edit_config(cfg, {"log": {"level": "DEBUG"}})
    oauth_mailbox.append([_inquiry("good1")])
    done = bot(cfg, "run", "--once", env={"BOT_OAUTH2__REFRESH_TOKEN": rt})
    assert done.returncode == 0, done.stderr[-3000:]
    assert _replied(oauth_sink, "good1") == 1 and _unseen(oauth_mailbox) == 0
    assert oauth.grants == {"refresh_token": 1}  # one token for IMAP and SMTP
    assert oauth_sink.auth_attempts == [("bot", True)]
    secrets = [*oauth.issued(), rt, SECRET]
    assert oauth.issued() and not [s for s in secrets if s in done.stderr + done.stdout]
    shown = bot(cfg, "config", "show", env={"BOT_OAUTH2__REFRESH_TOKEN": rt})
    assert shown.returncode == 0 and rt not in shown.stdout and SECRET not in shown.stdout
    assert json.loads(shown.stdout)["oauth2"]["client_secret"] == "***"


def test_wrong_client_secret_fails_clearly_and_loses_nothing(tmp_path: Path, oauth_mailbox: Dovecot,
                                                             oauth: OAuthServer, oauth_sink, test_ca) -> None:
    oauth.add_client(CLIENT, SECRET, user="bot")
    cfg = write_config(tmp_path, imap_port=oauth_mailbox.port, smtp_port=oauth_sink.port,
                       db_url=f"sqlite:///{tmp_path}/bot.db",
                       overrides=_oauth_config(oauth, test_ca.cert, client_secret="not-the-secret"))
    oauth_mailbox.append([_inquiry("secret1")])
    failed = bot(cfg, "run", "--once")
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "invalid_client" in failed.stderr and "Traceback" not in failed.stderr
    assert "not-the-secret" not in failed.stderr
    assert oauth_sink.messages() == [] and _unseen(oauth_mailbox) == 1  # nothing taken in, nothing lost
    edit_config(cfg, {"oauth2": {"client_secret": SECRET}})
    done = bot(cfg, "run", "--once")
    assert done.returncode == 0, done.stderr[-2000:]
    assert _replied(oauth_sink, "secret1") == 1 and _unseen(oauth_mailbox) == 0


@pytest.fixture
def imap_proxy(oauth_mailbox: Dovecot) -> Iterator[FaultyProxy]:
    with FaultyProxy(oauth_mailbox.port) as proxy:
        yield proxy


def _run_config(tmp_path: Path, oauth: OAuthServer, sink: Any, ca: Any, proxy: FaultyProxy) -> Path:
    """A `run` signing in with the token server's client, through `proxy`, reconnecting quickly."""
    oauth.add_client(CLIENT, SECRET, user="bot")
    cfg = write_config(tmp_path, imap_port=proxy.port, smtp_port=sink.port,
                       db_url=f"sqlite:///{tmp_path}/bot.db", overrides=_oauth_config(oauth, ca.cert))
    edit_config(cfg, {"mailbox": {"reconnect_max_seconds": 1, "idle_renew_seconds": 10}})
    return cfg


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)


def test_expired_tokens_are_renewed_for_smtp_and_imap(tmp_path: Path, oauth_mailbox: Dovecot, oauth: OAuthServer,
                                                      oauth_sink, test_ca, imap_proxy: FaultyProxy) -> None:
    cfg = _run_config(tmp_path, oauth, oauth_sink, test_ca, imap_proxy)
    log = tmp_path / "bot.log"
    with log.open("w") as err:
        proc = bot_process(cfg, "run", stderr=err)
        try:
            assert wait_for_line(log, "watching INBOX", 20), log.read_text()
            oauth_mailbox.append([_inquiry("exp1")])
            assert _wait_reply(oauth_sink, "exp1", 15), log.read_text()[-3000:]
            oauth.expire_all()  # the IDLE session goes on; the next SMTP sign-in is refused, then renewed
            oauth_mailbox.append([_inquiry("exp2")])
            assert _wait_reply(oauth_sink, "exp2", 15), log.read_text()[-3000:]
            oauth.expire_all()
            imap_proxy.cut()  # the next IMAP sign-in presents an expired token
            oauth_mailbox.append([_inquiry("exp3")])
            assert _wait_reply(oauth_sink, "exp3", 20), log.read_text()[-3000:]
        finally:
            _stop(proc)
    text = log.read_text()
    assert "SMTP AUTH XOAUTH2 as bot refused" in text and "IMAP XOAUTH2 sign-in as bot refused" in text
    assert oauth.grants["client_credentials"] == 3
    assert [_replied(oauth_sink, t) for t in ("exp1", "exp2", "exp3")] == [1, 1, 1]


def test_idle_ended_by_bye_access_token_expired_reconnects_with_a_new_token(
        tmp_path: Path, oauth_mailbox: Dovecot, oauth: OAuthServer, oauth_sink, test_ca,
        imap_proxy: FaultyProxy) -> None:
    cfg = _run_config(tmp_path, oauth, oauth_sink, test_ca, imap_proxy)
    log = tmp_path / "bot.log"
    with log.open("w") as err:
        proc = bot_process(cfg, "run", stderr=err)
        try:
            assert wait_for_line(log, "watching INBOX", 20), log.read_text()
            oauth_mailbox.append([_inquiry("bye1")])
            assert _wait_reply(oauth_sink, "bye1", 15), log.read_text()[-3000:]
            assert wait_for_line(log, "outbox sent=1", 5)
            wait_until(lambda: imap_proxy.idling() >= 1, 10, "the watcher in IDLE again")
            oauth.expire_all()  # as Microsoft does when the session's token expires
            assert imap_proxy.say_and_cut(b"* BYE Session invalidated - AccessTokenExpired\r\n") >= 1
            oauth_mailbox.append([_inquiry("bye2")])  # lands while the bot is away
            assert _wait_reply(oauth_sink, "bye2", 20), log.read_text()[-3000:]
        finally:
            _stop(proc)
    text = log.read_text()
    assert "AccessTokenExpired" in text and text.count("watching INBOX") >= 2, text[-3000:]
    assert "refused" not in text  # the BYE dropped the token: the reconnect fetched a new one at once
    assert oauth.grants["client_credentials"] == 2
    assert _replied(oauth_sink, "bye1") == 1 and _replied(oauth_sink, "bye2") == 1


def test_revoked_refresh_token_turns_healthz_503_and_mail_waits_for_a_good_token(
        tmp_path: Path, oauth_mailbox: Dovecot, oauth: OAuthServer, oauth_sink, test_ca,
        imap_proxy: FaultyProxy) -> None:
    oauth.add_client(CLIENT, SECRET)
    rt = oauth.issue_refresh_token(CLIENT, "bot")
    port = free_ports(1)[0]
    cfg = write_config(tmp_path, imap_port=imap_proxy.port, smtp_port=oauth_sink.port,
                       db_url=f"sqlite:///{tmp_path}/bot.db", overrides=_oauth_config(oauth, test_ca.cert))
    edit_config(cfg, {"mailbox": {"reconnect_max_seconds": 1, "idle_renew_seconds": 10},
                      "health": {"listen": f"127.0.0.1:{port}"}})
    log = tmp_path / "bot.log"
    with log.open("w") as err:
        proc = bot_process(cfg, "run", stderr=err, env={"BOT_OAUTH2__REFRESH_TOKEN": rt})
        try:
            assert wait_status(port, 200, 20)[0] is not None, log.read_text()[-3000:]
            oauth_mailbox.append([_inquiry("rev1")])
            assert _wait_reply(oauth_sink, "rev1", 15), log.read_text()[-3000:]
            assert _wait_unseen(oauth_mailbox, 0, 10)
            oauth.revoke(rt)  # an admin revoked consent, or the token expired unused
            imap_proxy.cut()
            oauth_mailbox.append([_inquiry("rev2")])
            took, body = wait_status(port, 503, 15)
            assert took is not None, log.read_text()[-3000:]
            assert "invalid_grant" in json.loads(body)["reasons"][0]
            _, metrics = http_get(port, "/metrics")
            assert 'bot_oauth2_token_errors_total{code="invalid_grant"}' in metrics
            assert "bot_oauth2_token_ok 0.0" in metrics
            assert wait_for_line(log, "invalid_grant", 5)
            waiting = _replied(oauth_sink, "rev2"), _unseen(oauth_mailbox)
            oauth.reinstate(rt)  # a good token can be had again
            assert _wait_reply(oauth_sink, "rev2", 30), log.read_text()[-3000:]
            assert wait_status(port, 200, 15)[0] is not None
        finally:
            _stop(proc)
    assert waiting == (0, 1)  # the mail stayed in the mailbox, unanswered, until then
    text = log.read_text()
    assert rt not in text and not [t for t in oauth.issued() if t in text]
    assert _replied(oauth_sink, "rev2") == 1 and _unseen(oauth_mailbox) == 0


def test_config_checks_name_the_oauth2_keys(tmp_path: Path, oauth: OAuthServer, test_ca) -> None:
    from bot.core.errors import ConfigError
    from bot.settings import load_settings

    cases = [
        ({"client_id": ""}, "oauth2.client_id"),
        ({"provider": "microsoft", "token_url": "", "tenant": ""}, "oauth2.tenant"),
        ({"token_url": ""}, "oauth2.token_url"),
        ({"token_url": "http://tokens.example.com/token"}, "https://"),
        ({"client_secret": ""}, "oauth2.client_secret"),
        ({"provider": "google", "client_id": "", "client_secret": ""}, "oauth2.service_account_file"),
        ({"provider": "microsoft", "tenant": "t", "token_url": "https://login.example.com/t/token"}, "/oauth2/v2.0/token"),
    ]
    for values, key in cases:
        cfg = write_config(tmp_path, imap_port=1, smtp_port=2, db_url="sqlite://",
                           overrides=_oauth_config(oauth, test_ca.cert, **values))
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_settings(cfg)
    cfg = write_config(tmp_path, imap_port=1, smtp_port=2, db_url="sqlite://",
                       overrides={**_oauth_config(oauth, test_ca.cert), "smtp": {"auth": "oauth2", "username": ""}})
    with pytest.raises(ConfigError, match=r"smtp\.username"):
        load_settings(cfg)
    cfg = write_config(tmp_path, imap_port=1, smtp_port=2, db_url="sqlite://",
                       overrides={**_oauth_config(oauth, test_ca.cert), "mailbox": {
                           "auth": "oauth2", "host": "imap.example.com"}})
    with pytest.raises(ConfigError, match=r"mailbox\.security"):
        load_settings(cfg)
    edit_config(cfg, {"health": {"listen": "9464"}})
    with pytest.raises(ConfigError, match=r"health\.listen"):
        load_settings(cfg)
