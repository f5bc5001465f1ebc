"""Mail servers for the `demo` command: IMAP (pymap, in memory) and SMTP (aiosmtpd) on loopback.

No root, no outside service, nothing written to disk. Both servers run in one background
thread with its own asyncio loop, so the bot can talk to them like to any real server:

    with DemoServers() as servers:
        servers.append(raw_inquiry)                  # an inquiry lands in the privacy mailbox
        ... bot: IMAP 127.0.0.1:servers.imap_port, SMTP 127.0.0.1:servers.smtp_port ...
        servers.sent()                               # what the bot sent to other addresses

The SMTP server is also the incoming MX of the privacy address: mail sent to it for
`privacy_address` is APPENDed into the IMAP mailbox (with Return-Path and Delivered-To
added, as a delivery agent does); mail for any other address is only recorded. Register
`add_listener(callback)` to hear about each message (`add_listener(queue.put)` gives a queue).

pymap (dict backend) differs from a production server: no CONDSTORE/QRESYNC/SPECIAL-USE,
UIDs start at 101, and its maildir backend (not used here) drops custom keywords and
returns LF line endings. Neither server offers TLS; AUTH is not required for SMTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import threading
from argparse import Namespace
from asyncio import StreamReader, StreamWriter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient
from proxyprotocol.reader import ProxyProtocolReader
from proxyprotocol.sock import SocketInfo
from proxyprotocol.version import ProxyProtocolVersion
from pymap.backend.dict import DictBackend
from pymap.concurrent import Subsystem
from pymap.imap import IMAPServer
from pysasl.hashing import Cleartext

from bot.demo.loopback import LoopThread, SmtpConnections, crlf, envelope_bytes, finish_tasks, until

log = logging.getLogger(__name__)

DEFAULT_USER = "privacy@example.com"
DEFAULT_PASSWORD = "demo-password"
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")
_HEADER_END = re.compile(rb"\r\n\r\n")


@dataclass(frozen=True)
class ReceivedMail:
    """One message the demo SMTP server accepted."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes
    delivered: bool  # APPENDed into the privacy mailbox (a recipient was the privacy address)
    relayed: bool  # some recipient was another address: the bot sent it out ("sent" mail)


MailListener = Callable[[ReceivedMail], None]


class DemoServers:
    """An in-memory IMAP mailbox (with IDLE) and an SMTP server on loopback, in a background thread.

    Ports default to free ones (0); read them from `imap_port`/`smtp_port` after `start()`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        imap_port: int = 0,
        smtp_port: int = 0,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        privacy_address: str | None = None,
        folders: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.user = user
        self.password = password
        self.privacy_address = (privacy_address or (user if "@" in user else f"{user}@example.com")).lower()
        self.folders = tuple(folders)
        self._imap_port = imap_port
        self._smtp_port = smtp_port
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._listeners: list[MailListener] = []
        self._arrived = threading.Condition(self._lock)
        self._loop = LoopThread("demo-servers")
        self._servers: list[asyncio.AbstractServer] = []
        self._imap_writers: set[StreamWriter] = set()
        self._smtp = SmtpConnections()

    # ---- ports and state ---------------------------------------------------------------------------
    @property
    def imap_port(self) -> int:
        if not self._imap_port:
            raise RuntimeError("DemoServers not started")
        return self._imap_port

    @property
    def smtp_port(self) -> int:
        if not self._smtp_port:
            raise RuntimeError("DemoServers not started")
        return self._smtp_port

    @property
    def running(self) -> bool:
        return self._loop.running

    # ---- life cycle ------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start both servers; returns once they accept connections."""
        self._loop.start()
        try:
            self._loop.run(self._open(), timeout=30)
            for folder in self.folders:
                with self._client() as client:
                    client.create_folder(folder)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Close both servers and every open connection.

        The SMTP record (`received`, `sent`) is kept; the IMAP mailbox lives in memory and is gone.
        """
        if not self._loop.running:
            return
        try:
            self._loop.run(self._close(), timeout=30)
        finally:
            self._loop.stop()

    def __enter__(self) -> Self:
        if not self._loop.running:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def _open(self) -> None:
        # Cleartext passwords: the default PBKDF2 (500,000 rounds) would cost ~0.3 s per login.
        args = Namespace(
            debug=False,
            host=self.host,
            port=self._imap_port,
            cert=None,
            key=None,
            tls=False,
            demo_data=False,
            demo_user=self.user,
            demo_password=self.password,
            passlib_cfg=None,
            proxy_protocol=None,
            inherited_sockets=None,
        )
        backend, config = await DictBackend.init(
            args,
            hash_context=Cleartext(),
            cpu_subsystem=Subsystem.for_asyncio(),
            ssl_context=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH),  # unused: TLS is off
            proxy_protocol=ProxyProtocolVersion.get(),
            reject_dnsbl=False,
        )
        # pymap keeps its concurrency subsystem in a context variable: set it here, in the task
        # that creates the server, so that every connection's task inherits it.
        config.apply_context()
        imap_server = IMAPServer(backend.login, config)

        async def imap_connection(reader: StreamReader, writer: StreamWriter, sock_info: SocketInfo) -> None:
            self._imap_writers.add(writer)
            try:
                await imap_server(reader, writer, sock_info)
            finally:
                self._imap_writers.discard(writer)

        callback = ProxyProtocolReader(config.proxy_protocol).get_callback(imap_connection)
        imap = await asyncio.start_server(callback, self.host, self._imap_port)
        self._servers.append(imap)
        self._imap_port = imap.sockets[0].getsockname()[1]

        handler = _SmtpHandler(self)

        def smtp_protocol() -> SMTP:
            return SMTP(
                handler,
                hostname="demo-mx.localhost",
                authenticator=self._authenticate,
                auth_required=False,
                auth_require_tls=False,
                enable_SMTPUTF8=True,
                data_size_limit=64 * 1024 * 1024,
            )

        smtp = await asyncio.get_running_loop().create_server(self._smtp.track(smtp_protocol), self.host,
                                                              self._smtp_port)
        self._servers.append(smtp)
        self._smtp_port = smtp.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        servers, self._servers = self._servers, []
        for server in servers:
            server.close()
        writers = list(self._imap_writers)
        for writer in writers:
            writer.close()
        protocols = self._smtp.close()
        # let the connections finish closing before the loop goes away (else: unclosed sockets)
        await until(lambda: SmtpConnections.closed(protocols) and not any(w in self._imap_writers for w in writers),
                    timeout=2)
        await finish_tasks()
        for server in servers:
            await server.wait_closed()
        await asyncio.get_running_loop().shutdown_default_executor()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        """AUTH is offered but optional; if used, the mailbox credentials must match."""
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login.decode() == self.user and auth_data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)

    # ---- the mailbox ------------------------------------------------------------------------------------
    def _client(self) -> IMAPClient:
        client = IMAPClient(self.host, port=self.imap_port, ssl=False, timeout=30)
        try:
            client.login(self.user, self.password)
        except BaseException:
            with contextlib.suppress(OSError):
                client.shutdown()
            raise
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> int:
        """Put a message into the mailbox with IMAP APPEND; returns its UID."""
        with self._client() as client:
            response = client.append(folder, crlf(raw))
        found = _APPENDUID.search(response)
        if found is None:
            raise RuntimeError(f"APPEND answered without a UID: {response!r}")
        return int(found.group(1))

    def messages(self, folder: str = "INBOX") -> dict[int, bytes]:
        """The messages in `folder` as {uid: raw}, fetched without setting \\Seen."""
        with self._client() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search(["ALL"])
            data = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
        return {int(uid): bytes(item[b"BODY[]"]) for uid, item in sorted(data.items())}

    # ---- SMTP ----------------------------------------------------------------------------------------------
    def add_listener(self, listener: MailListener) -> None:
        """Call `listener(mail)` for every message the SMTP server accepts from now on.

        It runs in the server thread: keep it short and do not call back into DemoServers.
        """
        with self._lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: MailListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    def received(self) -> list[ReceivedMail]:
        """Every message accepted over SMTP, oldest first."""
        with self._lock:
            return list(self._received)

    def sent(self) -> list[bytes]:
        """The raw messages sent to addresses other than the privacy address (the bot's replies)."""
        with self._lock:
            return [mail.raw for mail in self._received if mail.relayed]

    def wait_sent(self, count: int, timeout: float) -> list[bytes]:
        """Wait until `count` messages were sent (see `sent`); raises TimeoutError."""
        with self._arrived:
            if not self._arrived.wait_for(
                lambda: sum(mail.relayed for mail in self._received) >= count, timeout=timeout
            ):
                raise TimeoutError(f"fewer than {count} messages sent within {timeout} s")
            return [mail.raw for mail in self._received if mail.relayed]

    def _is_privacy_address(self, address: str) -> bool:
        return parseaddr(address)[1].lower() == self.privacy_address

    async def _accept(self, mail_from: str, rcpt_tos: tuple[str, ...], raw: bytes) -> str:
        delivered = any(self._is_privacy_address(r) for r in rcpt_tos)
        relayed = not all(self._is_privacy_address(r) for r in rcpt_tos)
        if delivered:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    None, self.append, _delivered(raw, mail_from, self.privacy_address)
                )
            except Exception:
                log.exception("demo: could not APPEND a message for %s", self.privacy_address)
                return "451 4.3.0 Could not deliver to the mailbox, try again later"
        mail = ReceivedMail(mail_from, rcpt_tos, raw, delivered=delivered, relayed=relayed)
        with self._arrived:
            self._received.append(mail)
            listeners = list(self._listeners)
            self._arrived.notify_all()
        for listener in listeners:
            try:
                listener(mail)
            except Exception:
                log.exception("demo: a mail listener failed")
        return "250 OK: queued" if relayed else "250 OK: delivered"


class _SmtpHandler:
    def __init__(self, servers: DemoServers) -> None:
        self.servers = servers

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return await self.servers._accept(envelope.mail_from or "", tuple(envelope.rcpt_tos), envelope_bytes(envelope))


_RETURN_PATH = re.compile(rb"^Return-Path:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*", re.IGNORECASE | re.MULTILINE)


def _delivered(raw: bytes, mail_from: str, recipient: str) -> bytes:
    """The message as a delivery agent stores it: any Return-Path replaced by the envelope
    sender ("<>" for a bounce), and Delivered-To added, on top; CRLF line endings."""
    raw = crlf(raw)
    end = _HEADER_END.search(raw)
    split = end.start() + 2 if end else len(raw)
    head = _RETURN_PATH.sub(b"", raw[:split])
    top = f"Return-Path: <{mail_from}>\r\nDelivered-To: {recipient}\r\n".encode()
    return top + head + raw[split:]
