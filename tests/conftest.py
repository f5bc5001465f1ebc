"""Shared fixtures: real servers on loopback (Dovecot, an SMTP sink, PostgreSQL) and test data.

When a server cannot run here (Dovecot not installed, not root, no PostgreSQL on
127.0.0.1:5432) the tests that need it are skipped with the reason, unless the
environment variable BOT_REQUIRE_SERVERS is set to a non-empty value other than "0"
(as in CI): then they fail loudly instead.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.mailservers import (
    Dovecot,
    DovecotOAuth2,
    MailServerUnavailable,
    SmtpSink,
    TestCA,
    TestCert,
    make_test_ca,
    make_test_cert,
)
from tests.oauth_server import OAuthServer

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def servers_required() -> bool:
    return os.environ.get("BOT_REQUIRE_SERVERS", "") not in ("", "0")


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail when BOT_REQUIRE_SERVERS is set."""
    if servers_required():
        pytest.fail(f"{reason} (BOT_REQUIRE_SERVERS is set, so this is an error)", pytrace=False)
    pytest.skip(reason)


# ---- asyncio clients -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def aio() -> Iterator[asyncio.Runner]:
    """One event loop for client coroutines in tests: `aio.run(aiosmtplib.send(...))`.

    Better than asyncio.run() per call: a transport closed as the call ends (aiosmtplib after an
    error, or a TLS shutdown) finishes closing on the next run instead of being reported as an
    unclosed socket (ResourceWarning, an error under filterwarnings=error).
    """
    runner = asyncio.Runner()
    try:
        yield runner
    finally:
        runner.run(asyncio.sleep(0.05))
        runner.close()


# ---- TLS certificate ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TestCert:
    """Self-signed cert for localhost/127.0.0.1, shared by Dovecot and TLS SMTP sinks."""
    try:
        return make_test_cert(tmp_path_factory.mktemp("tls"))
    except MailServerUnavailable as exc:
        unavailable(str(exc))


# ---- Dovecot ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dovecot(tls_cert: TestCert) -> Iterator[Dovecot]:
    """One Dovecot for the whole session (IMAP, IMAPS, LMTP on free ports). Users bot, alice.

    Its directory is /tmp/bot-test-dovecot-*, not under pytest's tmp_path_factory: Dovecot's
    unprivileged processes must reach it, and every pytest session that starts (another
    developer's, a second run) chmods /tmp/pytest-of-<user> back to 0700, which would cut a
    running Dovecot off from its users file and mail ("Temporary authentication failure").
    """
    yield from _session_dovecot(Dovecot(cert=tls_cert), "bot-test-dovecot-")


def _session_dovecot(server: Dovecot, prefix: str) -> Iterator[Dovecot]:
    """Start `server` in a fresh /tmp folder named `prefix`..., yield it, then stop it and remove the folder."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        try:
            server.start(directory)
        except MailServerUnavailable as exc:
            unavailable(str(exc))
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


def _emptied(server: Dovecot) -> Dovecot:
    """A session Dovecot for one test: default folders empty, other folders deleted."""
    if not server.running:  # a test stopped it and failed before restarting it
        server.restart()
    server.reset()
    return server


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Dovecot:
    """The session Dovecot, emptied: default folders empty, other folders deleted."""
    return _emptied(dovecot)


# ---- OAuth 2.0 ------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def test_ca() -> Iterator[TestCA]:
    """A CA of the tests' own (in /tmp, reachable by Dovecot's unprivileged auth process)."""
    directory = Path(tempfile.mkdtemp(prefix="bot-test-ca-"))
    directory.chmod(0o755)
    try:
        try:
            yield make_test_ca(directory)
        except MailServerUnavailable as exc:
            unavailable(str(exc))
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def oauth_server(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    """The token and introspection server (tests/oauth_server.py) over HTTPS, for the whole session."""
    server = OAuthServer(test_ca.issue(tmp_path_factory.mktemp("oauth-cert"), "oauth"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oauth(oauth_server: OAuthServer) -> OAuthServer:
    """The session's token server, emptied: no clients, no tokens, tokens living an hour."""
    oauth_server.reset()
    return oauth_server


@pytest.fixture(scope="session")
def _oauth_dovecot(tls_cert: TestCert, oauth_server: OAuthServer, test_ca: TestCA) -> Iterator[Dovecot]:
    server = Dovecot(cert=tls_cert, oauth2=DovecotOAuth2(oauth_server.introspection_url, test_ca.cert))
    yield from _session_dovecot(server, "bot-test-dovecot-oauth-")


@pytest.fixture
def oauth_mailbox(_oauth_dovecot: Dovecot, oauth: OAuthServer) -> Dovecot:
    """A Dovecot that also signs in with OAuth 2.0 tokens (XOAUTH2, OAUTHBEARER) checked at `oauth`'s
    introspection endpoint; emptied like `mailbox`. Password logins (the test helpers') still work."""
    return _emptied(_oauth_dovecot)


# ---- SMTP sink ----------------------------------------------------------------------------------------


@pytest.fixture
def make_smtp_sink(tls_cert: TestCert) -> Iterator[Callable[..., SmtpSink]]:
    """Factory for started sinks, e.g. make_smtp_sink(tls="starttls"); all are stopped afterwards.

    Keyword arguments go to SmtpSink; `cert` defaults to the session test cert.
    """
    sinks: list[SmtpSink] = []

    def make(**kwargs: Any) -> SmtpSink:
        kwargs.setdefault("cert", tls_cert)
        sink = SmtpSink(**kwargs)
        sink.start()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.stop()


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A fresh plain SMTP sink (no STARTTLS offered) on a free loopback port."""
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


# ---- PostgreSQL ---------------------------------------------------------------------------------------


class _Postgres:
    """Creates and drops throw-away databases on the local server (user postgres, trust auth)."""

    def __init__(self) -> None:
        import psycopg

        self._psycopg = psycopg
        self._conn = psycopg.connect(PG_ADMIN, autocommit=True)
        self._force = " WITH (FORCE)" if self._conn.info.server_version >= 130000 else ""

    def create(self) -> str:
        name = f"bot_test_{secrets.token_hex(6)}"
        self._conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop(self, name: str) -> None:
        self._conn.execute(f'DROP DATABASE IF EXISTS "{name}"{self._force}')

    def close(self) -> None:
        self._conn.close()


@pytest.fixture(scope="session")
def _pg() -> Iterator[_Postgres]:
    try:
        import psycopg
    except ImportError as exc:
        unavailable(f"psycopg is not installed: {exc}")
    try:
        pg = _Postgres()
    except psycopg.Error as exc:
        unavailable(f"no PostgreSQL answering at 127.0.0.1:5432 as user postgres: {exc}".strip())
    try:
        yield pg
    finally:
        pg.close()


@pytest.fixture(scope="session")
def postgres_url(_pg: _Postgres) -> Iterator[str]:
    """A fresh database for the session: postgresql+psycopg://postgres@127.0.0.1:5432/bot_test_<random>."""
    name = _pg.create()
    try:
        yield PG_URL.format(name=name)
    finally:
        _pg.drop(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Run a test on both databases: a fresh SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    pg: _Postgres = request.getfixturevalue("_pg")
    name = pg.create()
    try:
        yield PG_URL.format(name=name)
    finally:
        pg.drop(name)


# ---- data -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-mail corpus (/work/shared/corpus/real, or BOT_CORPUS_DIR)."""
    env = os.environ.get("BOT_CORPUS_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "real"
    if not path.is_dir():
        pytest.skip(f"mail corpus not found at {path} (set BOT_CORPUS_DIR)")
    return path
