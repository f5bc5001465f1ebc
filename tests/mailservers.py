"""Real mail servers on loopback for the tests: a throw-away Dovecot and an aiosmtpd sink.

Plain Python (no pytest inside), so a script or a bot run in a subprocess can use it too:

    dovecot = Dovecot()
    dovecot.start(Path("/tmp/x"))          # IMAP, IMAPS, LMTP on free 127.0.0.1 ports
    uids = dovecot.append([raw_bytes])
    ...
    dovecot.stop()

    sink = SmtpSink(maildir=Path("/tmp/sink"))
    sink.start()                          # aiosmtpd in a background thread
    ... send to 127.0.0.1:sink.port ...
    sink.wait_for(1, timeout=5)
    sink.stop()

Dovecot needs root and the Debian packages (scripts/install_test_servers.sh); when either is
missing `Dovecot.start` raises `MailServerUnavailable` with a message saying what to do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import email.policy
import json
import logging
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient

from bot.demo.loopback import LoopThread, SmtpConnections, crlf, envelope_bytes, finish_tasks, until

__all__ = [
    "Captured",
    "Dovecot",
    "DovecotNotInstalled",
    "DovecotOAuth2",
    "MailServerUnavailable",
    "SmtpSink",
    "TestCA",
    "TestCert",
    "free_ports",
    "make_test_ca",
    "make_test_cert",
    "wait_port",
]

HOST = "127.0.0.1"
DOVECOT_BIN = Path("/usr/sbin/dovecot")
INSTALL_HINT = "run `sudo scripts/install_test_servers.sh` (Debian packages dovecot-imapd, dovecot-lmtpd)"
DEFAULT_FOLDERS = ("INBOX", "Sent", "Drafts", "Trash", "Archive")
Security = Literal["none", "starttls", "ssl"]  # same words as the bot's [smtp] security setting

# aiosmtpd 1.4 logs "Session.login_data is deprecated" at WARNING on every successful AUTH.
_AIOSMTPD_LOG = logging.getLogger("mail.log")


def _drop_login_data_warning(record: logging.LogRecord) -> bool:
    return "login_data is deprecated" not in record.getMessage()


if _drop_login_data_warning not in _AIOSMTPD_LOG.filters:
    _AIOSMTPD_LOG.addFilter(_drop_login_data_warning)


class MailServerUnavailable(RuntimeError):
    """A test server cannot run on this machine (not installed, not root...). The message says why."""


class DovecotNotInstalled(MailServerUnavailable):
    pass


# ---------------------------------------------------------------------------------------------
# small helpers


def free_ports(count: int, host: str = HOST) -> list[int]:
    """`count` distinct ports that were free a moment ago (bound to port 0 together, then released)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def listening(host: str, port: int) -> bool:
    """A socket is in LISTEN state on host:port (IPv4), checked without connecting to it.

    Probing Dovecot by connecting makes it spawn login/LMTP processes; a SIGTERM that
    arrives while they start up can keep the master alive for 6 more seconds.
    """
    packed = socket.inet_aton(host)  # /proc/net/tcp shows the address as a native-endian integer
    want = f"{(packed[::-1] if sys.byteorder == 'little' else packed).hex().upper()}:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return port_open(host, port)
    for line in lines:
        fields = line.split()
        if len(fields) > 3 and fields[1] == want and fields[3] == "0A":
            return True
    return False


def wait_port(host: str, port: int, timeout: float, *, is_open: bool = True) -> bool:
    """Wait until a TCP port is listening (or, with is_open=False, is not)."""
    end = time.monotonic() + timeout
    while True:
        if listening(host, port) == is_open:
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(0.02)


@dataclass(frozen=True)
class TestCert:
    """A self-signed certificate for localhost and 127.0.0.1, usable as its own CA file."""

    __test__ = False  # not a pytest test class

    cert: Path
    key: Path
    ca: Path | None = None  # the CA that signed it (make_test_ca); None: self-signed, its own CA

    @property
    def ca_file(self) -> Path:
        """What a client must trust for this certificate."""
        return self.ca or self.cert

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts only this certificate (or its CA), hostname checked."""
        return ssl.create_default_context(cafile=str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert), str(self.key))
        return ctx


def make_test_cert(directory: Path) -> TestCert:
    """Write cert.pem/key.pem (EC P-256, 10 years) into `directory` unless they already exist."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    if cert.is_file() and cert.stat().st_size and key.is_file():
        return TestCert(cert, key)
    openssl = shutil.which("openssl")
    if openssl is None:
        raise MailServerUnavailable(f"openssl not found: {INSTALL_HINT}")
    cmd = [
        openssl,
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "3650",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyCertSign",
        "-addext",
        "extendedKeyUsage=serverAuth",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    ]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise MailServerUnavailable(f"openssl failed: {done.stderr.decode(errors='replace')}")
    key.chmod(0o600)
    return TestCert(cert, key)


@dataclass(frozen=True)
class TestCA:
    """A certificate authority of the tests' own, which signs server certificates (`issue`)."""

    __test__ = False

    cert: Path
    key: Path

    def issue(self, directory: Path, name: str = "server") -> TestCert:
        """A server certificate for localhost and 127.0.0.1 signed by this CA (written once)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert, key = directory / f"{name}.pem", directory / f"{name}.key"
        if cert.is_file() and cert.stat().st_size and key.is_file():
            return TestCert(cert, key, self.cert)
        csr, ext = directory / f"{name}.csr", directory / f"{name}.ext"
        ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n"
                       "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n")
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj",
                 "/CN=localhost", "-keyout", str(key), "-out", str(csr))
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert), "-CAkey", str(self.key),
                 "-CAcreateserial", "-days", "3650", "-extfile", str(ext), "-out", str(cert))
        csr.unlink()
        key.chmod(0o600)
        return TestCert(cert, key, self.cert)


def make_test_ca(directory: Path) -> TestCA:
    """Write ca.pem/ca.key (EC P-256, 10 years) into `directory` unless they already exist."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.pem", directory / "ca.key"
    if not (cert.is_file() and cert.stat().st_size and key.is_file()):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days",
                 "3650", "-subj", "/CN=Privacy Bot Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout", str(key), "-out", str(cert))
        key.chmod(0o600)
    cert.chmod(0o644)  # Dovecot's unprivileged auth process reads it
    return TestCA(cert, key)


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise MailServerUnavailable(f"openssl not found: {INSTALL_HINT}")
    done = subprocess.run([openssl, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=False)
    if done.returncode != 0:
        raise MailServerUnavailable(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")


def _alive(pid: int) -> bool:
    """Running, i.e. exists and is not a zombie (a container init may reap orphans late)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not re.search(r"^State:\s+Z", status, re.MULTILINE)


def _group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group `pgid`, from /proc/*/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_line = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may contain spaces, so split after the last ')'
        fields = stat_line.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _signal_group(pgid: int, sig: int) -> None:
    if _group_members(pgid):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# Dovecot

_DOVECOT_CONF = """\
# Self-contained Dovecot 2.3 test instance, written by tests/mailservers.py.
base_dir = {base_dir}
state_dir = {dir}/state
instance_name = {instance}
log_path = {dir}/dovecot.log
protocols = imap lmtp
listen = {host}
ssl = yes
ssl_cert = <{cert}
ssl_key = <{key}
disable_plaintext_auth = no
auth_mechanisms = {auth_mechanisms}
# mail is owned by the Debian 'mail' user; Dovecot refuses uid 0
first_valid_uid = 1
{oauth2_passdb}passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%n {dir}/users{passwd_mechanisms}
}}
userdb {{
  driver = passwd-file
  args = username_format=%n {dir}/users
}}
mail_location = maildir:~/Maildir
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}
# no stats process: a client caught mid-handshake with it delays shutdown by 5 s
stats_writer_socket_path =
# test instance: no fsync; fallback poll for IDLE (inotify is used normally)
mail_fsync = never
mailbox_idle_check_interval = 1 secs
# LMTP to user+Folder@any delivers into Folder
recipient_delimiter = +
lmtp_save_to_detail_mailbox = yes
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {imaps_port}
    ssl = yes
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = {host}
    port = {lmtp_port}
  }}
}}
"""

_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")

_OAUTH2_PASSDB = """\
# OAuth 2.0: XOAUTH2/OAUTHBEARER tokens checked at the token server's introspection endpoint
auth_failure_delay = 0 secs
login_trusted_networks = 127.0.0.0/8
passdb {{
  driver = oauth2
  mechanisms = {mechanisms}
  args = {conf}
}}
"""

_OAUTH2_CONF = """\
# written by tests/mailservers.py: validate each token by RFC 7662 introspection (POST token=...)
introspection_mode = post
introspection_url = {url}
username_attribute = username
active_attribute = active
active_value = true
tls_ca_cert_file = {ca}
timeout_msecs = 10000
"""


@dataclass(frozen=True)
class DovecotOAuth2:
    """Dovecot's `oauth2` passdb for `Dovecot(oauth2=...)`: tokens checked at `introspection_url` over HTTPS,
    trusting `ca_file`; the response must say {"active": true, "username": <the login name>}."""

    introspection_url: str
    ca_file: Path
    mechanisms: str = "xoauth2 oauthbearer"


class Dovecot:
    """A Dovecot instance of our own in one directory, on free loopback ports; needs root.

    Users: bot/botpass (the default for the helpers) and alice/alicepass. Mail lives in
    DIR/mail/<user>/Maildir, owned by the Debian `mail` user. IMAP (plain, STARTTLS offered)
    on `port`, implicit TLS on `imaps_port`, LMTP on `lmtp_port`; the self-signed
    certificate `cert_path` is valid for localhost and 127.0.0.1.
    """

    USERS: ClassVar[dict[str, str]] = {"bot": "botpass", "alice": "alicepass"}

    def __init__(self, *, cert: TestCert | None = None, binary: Path = DOVECOT_BIN, host: str = HOST,
                 oauth2: DovecotOAuth2 | None = None) -> None:
        self.host = host
        self.oauth2 = oauth2  # also sign-in with OAuth 2.0 tokens (XOAUTH2, OAUTHBEARER)
        self.binary = binary
        self._cert = cert
        self._dir: Path | None = None
        self._base_dir: Path | None = None
        self._ports: tuple[int, int, int] | None = None  # imap, imaps, lmtp
        self._pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- properties ----------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        if self._dir is None:
            raise RuntimeError("Dovecot was never started")
        return self._dir

    def _port(self, index: int) -> int:
        if self._ports is None:
            raise RuntimeError("Dovecot was never started")
        return self._ports[index]

    @property
    def port(self) -> int:
        """IMAP, plain with STARTTLS offered."""
        return self._port(0)

    @property
    def imaps_port(self) -> int:
        return self._port(1)

    @property
    def lmtp_port(self) -> int:
        return self._port(2)

    @property
    def cert(self) -> TestCert:
        if self._cert is None:
            raise RuntimeError("Dovecot was never started")
        return self._cert

    @property
    def cert_path(self) -> Path:
        return self.cert.cert

    @property
    def key_path(self) -> Path:
        return self.cert.key

    @property
    def user(self) -> str:
        return "bot"

    @property
    def password(self) -> str:
        return self.USERS["bot"]

    @property
    def log_path(self) -> Path:
        return self.dir / "dovecot.log"

    @property
    def running(self) -> bool:
        return self._pid is not None and _alive(self._pid)

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only the test certificate."""
        return self.cert.client_context()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, dir: Path, *, attempts: int = 5) -> None:
        """Start on free ports in `dir` (created if needed). Raises MailServerUnavailable."""
        if self.running:
            raise RuntimeError("Dovecot is already running")
        self._check_machine()
        self._dir = Path(dir).resolve()
        self._layout()
        self.stop()  # a leftover of ours in this directory (a crashed earlier run), if any
        last = ""
        for _ in range(attempts):
            ports = free_ports(3, self.host)
            try:
                self._launch((ports[0], ports[1], ports[2]))
                return
            except _PortTaken as exc:  # someone took a port between probing and binding: new ports
                last = str(exc)
        raise RuntimeError(f"Dovecot could not bind free ports after {attempts} attempts: {last}")

    def restart(self) -> None:
        """Stop, then start again on the same ports with the same mail (for outage tests)."""
        if self._ports is None:
            raise RuntimeError("Dovecot was never started")
        self.stop()
        deadline = time.monotonic() + 10
        while True:
            try:
                self._launch(self._ports)
                return
            except _PortTaken:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        """Stop our Dovecot (found by its pid file, checked against our config) and wait for the ports."""
        if self._dir is None:
            return
        pid = self._pid or self._read_pid()
        conf = str(self._dir / "dovecot.conf")
        running = pid is not None and _alive(pid) and conf in _cmdline(pid)
        if pid is not None and running:
            # The master leads its own process group (start_new_session): every Dovecot
            # process of this instance, and nothing else, is in the group `pid`.
            os.kill(pid, signal.SIGTERM)
            # Dovecot usually exits in about 1 s; stopped right after start-up, its master may
            # wait 6 s for children that were still starting: then the group gets SIGKILL.
            if not self._wait_gone(pid, 2.5):
                _signal_group(pid, signal.SIGKILL)
                if not self._wait_gone(pid, 5):
                    raise RuntimeError(f"Dovecot (pid {pid}) did not stop")
            # imap processes outlive the master with their clients; a real restart cuts them off.
            _signal_group(pid, signal.SIGTERM)
            end = time.monotonic() + 3
            while _group_members(pid) and time.monotonic() < end:
                time.sleep(0.02)
            _signal_group(pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout=5)  # reap our child
            self._proc = None
        self._pid = None
        if self._base_dir is not None:  # left behind after a SIGKILL; a stale one blocks the next start
            (self._base_dir / "master.pid").unlink(missing_ok=True)
        if running and self._ports is not None:
            for p in self._ports:  # children may hold the listeners a little longer
                wait_port(self.host, p, 5, is_open=False)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            if self._proc is not None and self._proc.pid == pid:
                if self._proc.poll() is not None:
                    return True
            elif not _alive(pid):
                return True
            if time.monotonic() > end:
                return False
            time.sleep(0.01)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- start-up details ------------------------------------------------------------------------
    def _check_machine(self) -> None:
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            raise DovecotNotInstalled(f"Dovecot not found at {self.binary}: {INSTALL_HINT}")
        if os.geteuid() != 0:
            raise MailServerUnavailable(
                "the Dovecot test instance must be started as root (it runs mail processes as the "
                "'mail' user); run the tests as root or set BOT_REQUIRE_SERVERS= to skip them"
            )
        try:
            pwd.getpwnam("dovecot")
        except KeyError:
            raise DovecotNotInstalled(f"system user 'dovecot' missing: {INSTALL_HINT}") from None

    def _layout(self) -> None:
        d = self.dir
        for sub in ("state", "mail"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        # Unix socket paths are limited to 108 bytes: keep base_dir short.
        if len(str(d / "run")) <= 60:
            self._base_dir = d / "run"
            self._base_dir.mkdir(exist_ok=True)
        elif self._base_dir is None:
            self._base_dir = Path(tempfile.mkdtemp(prefix="dovecot-run-"))
            self._base_dir.chmod(0o755)
        mail = pwd.getpwnam("mail") if _has_user("mail") else pwd.getpwnam("nobody")
        uid, gid = mail.pw_uid, mail.pw_gid
        os.chown(d / "mail", uid, gid)
        if self._cert is None:
            self._cert = make_test_cert(d)
        users = d / "users"
        users.write_text(
            "".join(f"{u}:{{PLAIN}}{p}:{uid}:{gid}::{d}/mail/{u}::\n" for u, p in self.USERS.items())
        )
        dovecot_gid = pwd.getpwnam("dovecot").pw_gid
        os.chown(users, 0, dovecot_gid)  # read by the auth process (user dovecot)
        users.chmod(0o640)
        _make_traversable(d)

    def _launch(self, ports: tuple[int, int, int]) -> None:
        d, base_dir = self.dir, self._base_dir
        assert base_dir is not None
        conf = d / "dovecot.conf"
        auth_mechanisms, oauth2_passdb, passwd_mechanisms = "plain login", "", ""
        if self.oauth2 is not None:
            ext = d / "dovecot-oauth2.conf.ext"
            ext.write_text(_OAUTH2_CONF.format(url=self.oauth2.introspection_url, ca=self.oauth2.ca_file))
            ext.chmod(0o644)
            auth_mechanisms = f"plain login {self.oauth2.mechanisms}"
            oauth2_passdb = _OAUTH2_PASSDB.format(mechanisms=self.oauth2.mechanisms, conf=ext)
            passwd_mechanisms = "\n  mechanisms = plain login"
        conf.write_text(
            _DOVECOT_CONF.format(
                auth_mechanisms=auth_mechanisms,
                oauth2_passdb=oauth2_passdb,
                passwd_mechanisms=passwd_mechanisms,
                dir=d,
                base_dir=base_dir,
                instance=f"bot-test-{os.getpid()}",
                host=self.host,
                cert=self.cert.cert,
                key=self.cert.key,
                imap_port=ports[0],
                imaps_port=ports[1],
                lmtp_port=ports[2],
            )
        )
        self._ports = ports
        stderr_path = d / "dovecot.stderr"
        offsets = [p.stat().st_size if p.exists() else 0 for p in (stderr_path, self.log_path)]
        # Foreground (-F): the master stays our child, so stop() can reap it (no zombie left).
        # Its stdio goes to a file, never to a pipe of ours (the daemon would hold it open).
        with open(stderr_path, "ab") as err:
            proc = subprocess.Popen(
                [str(self.binary), "-F", "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,
            )
        self._proc, self._pid = proc, proc.pid
        end = time.monotonic() + 20
        while not all(listening(self.host, p) for p in ports):
            if proc.poll() is not None or time.monotonic() > end:
                text = self._tail(stderr_path, offsets[0]) + self._tail(self.log_path, offsets[1])
                self.stop()
                if "Address already in use" in text:
                    raise _PortTaken(text)
                raise RuntimeError(f"Dovecot did not start (exit status {proc.returncode}):\n{text}")
            time.sleep(0.01)

    def _read_pid(self, wait: float = 0) -> int | None:
        if self._base_dir is None:
            return None
        pid_file = self._base_dir / "master.pid"
        end = time.monotonic() + wait
        while True:
            try:
                return int(pid_file.read_text().strip())
            except (OSError, ValueError):
                if time.monotonic() >= end:
                    return None
                time.sleep(0.02)

    @staticmethod
    def _tail(path: Path, offset: int = 0, limit: int = 4000) -> str:
        try:
            with path.open("rb") as fh:
                fh.seek(offset)
                return fh.read()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    # -- helpers for tests ---------------------------------------------------------------------------
    def client(
        self,
        user: str | None = None,
        password: str | None = None,
        *,
        security: Security = "none",
        timeout: float = 30,
    ) -> IMAPClient:
        """A logged-in IMAPClient (plain by default; "starttls" or "ssl" verify the test cert)."""
        user = user or self.user
        password = password if password is not None else self.USERS.get(user, self.password)
        if security == "ssl":
            c = IMAPClient(
                self.host, port=self.imaps_port, ssl=True, ssl_context=self.ssl_context(), timeout=timeout
            )
        else:
            c = IMAPClient(self.host, port=self.port, ssl=False, timeout=timeout)
        try:
            if security == "starttls":
                c.starttls(self.ssl_context())
            c.login(user, password)
        except BaseException:
            with contextlib.suppress(OSError):  # do not leave the socket to the GC (ResourceWarning)
                c.shutdown()
            raise
        return c

    def append(
        self,
        raws: Sequence[bytes],
        folder: str = "INBOX",
        *,
        flags: Iterable[bytes] = (),
        user: str | None = None,
    ) -> list[int]:
        """APPEND each message over one connection; returns their UIDs (UIDPLUS)."""
        uids: list[int] = []
        c = self.client(user)
        try:
            for raw in raws:
                resp = c.append(folder, crlf(raw), flags=tuple(flags))
                m = _APPENDUID.search(resp)
                if m is None:
                    raise RuntimeError(f"APPEND gave no APPENDUID: {resp!r}")
                uids.append(int(m.group(1)))
        finally:
            c.logout()
        return uids

    def drop_into_maildir(self, raws: list[bytes], *, user: str = "bot") -> None:
        """Write unread mails straight into the user's Maildir/new, as a delivery agent would (thousands
        a second, where APPEND manages about 150); Dovecot indexes them on the next SELECT."""
        home = self.dir / "mail" / user / "Maildir"
        mail = pwd.getpwnam("mail")
        stamp = int(time.time())
        for sub in ("cur", "new", "tmp"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        for i, raw in enumerate(raws):
            path = home / "new" / f"{stamp}.M{i}P{os.getpid()}.drop"
            path.write_bytes(raw)
            os.chown(path, mail.pw_uid, mail.pw_gid)
        for p in (home, home / "cur", home / "new", home / "tmp", home.parent):
            os.chown(p, mail.pw_uid, mail.pw_gid)

    def deliver(self, raw: bytes, recipient: str = "bot", mail_from: str = "sender@example.com") -> None:
        """Deliver like an MTA does, over LMTP (`bot+Folder` delivers into Folder)."""
        with smtplib.LMTP(self.host, self.lmtp_port, timeout=30) as lmtp:
            lmtp.sendmail(
                mail_from, [recipient if "@" in recipient else f"{recipient}@localhost"], crlf(raw)
            )

    def flags(self, uid: int, folder: str = "INBOX", *, user: str | None = None) -> tuple[bytes, ...]:
        """The message's flags and keywords, without \\Recent."""
        c = self.client(user)
        try:
            c.select_folder(folder, readonly=True)
            got = c.get_flags([uid])
        finally:
            c.logout()
        if uid not in got:
            raise KeyError(f"no message with UID {uid} in {folder}")
        return tuple(f for f in got[uid] if f != b"\\Recent")  # \Recent depends on the session

    def messages(self, folder: str = "INBOX", *, user: str | None = None) -> dict[int, bytes]:
        """Every message in `folder` as {uid: raw bytes}, without setting \\Seen."""
        c = self.client(user)
        try:
            c.select_folder(folder, readonly=True)
            uids = c.search(["ALL"])
            data = c.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        finally:
            c.logout()
        return {int(uid): bytes(v[b"BODY[]"]) for uid, v in sorted(data.items())}

    def reset(self) -> None:
        """Empty every default folder of every user and delete all other folders."""
        for user in self.USERS:
            c = self.client(user)
            try:
                names = [name for _flags, _sep, name in c.list_folders()]
                extra = sorted((n for n in names if n not in DEFAULT_FOLDERS), key=lambda n: -n.count("/"))
                for name in extra:  # children first
                    try:
                        c.unsubscribe_folder(name)
                    except IMAPClient.Error:
                        pass
                    try:
                        c.delete_folder(name)
                    except IMAPClient.Error as exc:
                        if "NONEXISTENT" not in str(exc):  # a parent that only existed as a path
                            raise
                for name in DEFAULT_FOLDERS:
                    if name not in names:
                        continue
                    info = c.select_folder(name)
                    if info.get(b"EXISTS"):
                        c.set_flags("1:*", [b"\\Deleted"], silent=True)  # a UID list of 20,000 is too long a line
                        c.expunge()
                    c.unselect_folder()
            finally:
                c.logout()


class _PortTaken(RuntimeError):
    pass


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _make_traversable(path: Path) -> None:
    """Let Dovecot's unprivileged processes (users mail, dovecot) reach `path`.

    pytest makes its temporary directories 0700; this adds only the search bit (o+x, no
    listing) to `path` and to those of its ancestors that lack it.
    """
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


# ---------------------------------------------------------------------------------------------
# SMTP sink


@dataclass(frozen=True)
class Captured:
    """One message the sink accepted: envelope and the bytes exactly as received."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 (Google's and Microsoft's SASL mechanism): accepted only when `sink.xoauth2`
        says the bearer token is good for the user; a refusal comes as a 334 JSON challenge, then 535."""
        check = self.sink.xoauth2
        blob = args[1] if len(args) > 1 else ""
        if not blob:
            answer = await server.challenge_auth("")
            blob = "" if answer is MISSING else base64.b64encode(bytes(answer)).decode()  # type: ignore[arg-type]
        try:
            fields = dict(p.split("=", 1) for p in base64.b64decode(blob).decode().split("\x01") if "=" in p)
        except ValueError:
            fields = {}
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else ""
        ok = check is not None and bool(token) and check(user, token)
        with self.sink._lock:
            self.sink.auth_attempts.append((user, ok))
        if ok:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        await server.challenge_auth(json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.test/"}))
        return AuthResult(success=False, handled=False,
                          message="535 5.7.8 Username and Password not accepted (token refused)")

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        failure = self.sink._take_failure("rcpt")
        if failure:
            return failure
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        failure = self.sink._take_failure("data")
        if failure:
            return failure
        captured = Captured(envelope.mail_from or "", tuple(envelope.rcpt_tos), envelope_bytes(envelope))
        self.sink._record(captured)
        if self.sink.data_delay:  # a slow server: the client waits this long for its 250
            await asyncio.sleep(self.sink.data_delay)
        return "250 OK: message captured"


class SmtpSink:
    """An aiosmtpd server in a background thread on 127.0.0.1 that keeps every message it accepts.

    tls: "none" (STARTTLS not offered, so aiosmtplib stays plain), "starttls" (offered, not
    required) or "ssl" (implicit TLS); the last two need `cert` (e.g. `dovecot.cert`).
    AUTH PLAIN/LOGIN is offered (also without TLS) and never required; any credentials pass
    unless `username`/`password` are given. With `maildir`, every message is also written to
    MAILDIR/new/ with two prepended headers X-Sink-Mail-From and X-Sink-Rcpt-To.
    """

    def __init__(
        self,
        *,
        host: str = HOST,
        port: int = 0,
        tls: Security = "none",
        cert: TestCert | None = None,
        maildir: Path | None = None,
        username: str | None = None,
        password: str | None = None,
        xoauth2: Callable[[str, str], bool] | None = None,
    ) -> None:
        """With `xoauth2` (user, token -> valid?), only AUTH XOAUTH2 is offered and it is required."""
        if tls != "none" and cert is None:
            raise ValueError(f"tls={tls!r} needs a cert")
        self.host = host
        self._port = port
        self.tls = tls
        self.cert = cert
        self.maildir = maildir
        self.username = username
        self.password = password
        self.xoauth2 = xoauth2
        self.auth_attempts: list[tuple[str, bool]] = []  # (user, accepted) of each AUTH XOAUTH2
        self._lock = threading.Condition()
        self._captured: list[Captured] = []
        self._failures: list[tuple[Literal["rcpt", "data"], str]] = []
        self.data_delay = 0.0
        self._loop = LoopThread("smtp-sink")
        self._server: asyncio.AbstractServer | None = None
        self._connections = SmtpConnections()
        self._count = 0
        if maildir is not None:
            for sub in ("tmp", "new", "cur"):
                (maildir / sub).mkdir(parents=True, exist_ok=True)

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("SmtpSink was never started")
        return self._port

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start listening (on the same port as before after a stop())."""
        self._loop.start()
        try:
            self._loop.run(self._open(), timeout=10)
        except BaseException:
            self._loop.stop(timeout=10)
            raise

    def stop(self) -> None:
        """Stop listening and drop open connections; captured messages are kept."""
        if not self._loop.running:
            return
        try:
            self._loop.run(self._close(), timeout=10)
        finally:
            self._loop.stop(timeout=10)

    def __enter__(self) -> Self:
        if not self._loop.running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self) -> None:
        ctx = self.cert.server_context() if self.cert is not None and self.tls != "none" else None
        handler = _SinkHandler(self)

        def factory() -> SMTP:
            with warnings.catch_warnings():  # "Requiring AUTH while not requiring TLS": a loopback test sink
                warnings.simplefilter("ignore", UserWarning)
                return _make()

        def _make() -> SMTP:
            proto = SMTP(
                handler,
                hostname="sink.localhost",
                tls_context=ctx if self.tls == "starttls" else None,
                require_starttls=False,
                authenticator=self._authenticate,
                auth_required=self.xoauth2 is not None,
                auth_require_tls=False,
                auth_exclude_mechanism=["PLAIN", "LOGIN"] if self.xoauth2 is not None else ["XOAUTH2"],
                data_size_limit=64 * 1024 * 1024,
                enable_SMTPUTF8=True,
            )
            return proto

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._connections.track(factory), self.host, self._port, ssl=ctx if self.tls == "ssl" else None, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        protocols = self._connections.close()
        # let every connection finish closing (a TLS one exchanges close_notify first): a socket
        # left half-closed when the loop is closed is reported as a ResourceWarning
        await until(lambda: SmtpConnections.closed(protocols), timeout=2)
        await finish_tasks()
        if server is not None:
            await server.wait_closed()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        if self.username is None:
            return AuthResult(success=True)
        ok = auth_data.login.decode() == self.username and auth_data.password.decode() == (
            self.password or ""
        )
        return AuthResult(success=ok, handled=False)

    # -- capture ---------------------------------------------------------------------------------
    def _record(self, captured: Captured) -> None:
        if self.maildir is not None:
            self._write_maildir(captured)
        with self._lock:
            self._captured.append(captured)
            self._lock.notify_all()

    def _write_maildir(self, captured: Captured) -> None:
        assert self.maildir is not None
        self._count += 1
        hdr = (
            f"X-Sink-Mail-From: <{captured.mail_from}>\r\n"
            f"X-Sink-Rcpt-To: {', '.join(f'<{r}>' for r in captured.rcpt_tos)}\r\n"
        ).encode()
        name = f"{time.time_ns()}.P{os.getpid()}Q{self._count}.sink"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(hdr + captured.raw)
        tmp.rename(self.maildir / "new" / name)  # atomic for readers

    def messages(self) -> list[Captured]:
        with self._lock:
            return list(self._captured)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Captured]:
        """Wait until at least `count` messages arrived; returns all of them. Raises TimeoutError."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._captured) >= count, timeout=timeout):
                subjects = [c.message.get("Subject", "") for c in self._captured]
                raise TimeoutError(
                    f"SMTP sink: {len(self._captured)} of {count} messages in {timeout} s: {subjects}"
                )
            return list(self._captured)

    def clear(self) -> None:
        with self._lock:
            self._captured.clear()

    # -- failure mode ----------------------------------------------------------------------------
    def fail_next(
        self, n: int = 1, code: int = 451, message: str | None = None, *, at: Literal["rcpt", "data"] = "data"
    ) -> None:
        """The next `n` DATA (or, with at="rcpt", RCPT TO) commands answer `code` instead of 250.

        451 is a temporary failure (retry later), 550/554 a permanent one. Calls add up.
        """
        if not 400 <= code <= 599:
            raise ValueError("code must be a 4xx or 5xx SMTP reply code")
        text = message or ("4.3.0 Temporary failure, try again later" if code < 500 else "5.7.1 Rejected")
        with self._lock:
            self._failures.extend([(at, f"{code} {text}")] * n)

    def _take_failure(self, stage: Literal["rcpt", "data"]) -> str | None:
        with self._lock:
            for i, (at, reply) in enumerate(self._failures):
                if at == stage:
                    del self._failures[i]
                    return reply
        return None
