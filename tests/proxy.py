"""A loopback TCP proxy that tests can break on purpose: cut every connection, swallow traffic
silently (a half-open link), or refuse new connections; then heal."""

from __future__ import annotations

import socket
import threading
import time
from typing import Self

from tests.mailservers import HOST


class FaultyProxy:
    def __init__(self, target_port: int, *, target_host: str = HOST) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket]] = []
        self.refusing = False
        self._swallowed: set[socket.socket] = set()
        self._cut: set[socket.socket] = set()
        self.accepted = 0
        self.idles = 0  # IMAP IDLE commands the server accepted ("+ idling") through the proxy
        self._idling: set[socket.socket] = set()  # client sockets whose last word from the server was "+ idling"
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    # -- faults --------------------------------------------------------------------------------
    def _take(self, idling_only: bool) -> list[tuple[socket.socket, socket.socket]]:
        with self._lock:
            links = [pair for pair in self._links if not idling_only or pair[0] in self._idling]
            self._links = [pair for pair in self._links if pair not in links]
        return links

    def cut(self, *, idling_only: bool = False) -> int:
        """Reset every open connection (or those in IMAP IDLE), as a dropped NAT entry or a restarted
        firewall would."""
        links = self._take(idling_only)
        with self._lock:
            self._cut.update(sock for pair in links for sock in pair)
        for pair in links:  # wake the pump threads first: a socket closed under a blocked recv stays open
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RD)
                except OSError:
                    pass
        time.sleep(0.05)
        for pair in links:
            for sock in pair:
                _reset(sock)
        return len(links)

    def say_and_cut(self, data: bytes, *, idling_only: bool = False) -> int:
        """Send `data` to every client (or those in IMAP IDLE) as if the server had said it (e.g.
        Microsoft's `* BYE Session invalidated - AccessTokenExpired`), then close the connections."""
        links = self._take(idling_only)
        for client, upstream in links:
            try:
                client.sendall(data)
            except OSError:
                pass
            for sock in (client, upstream):  # a clean close (FIN), so the client reads what was said
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        time.sleep(0.05)
        for pair in links:
            for sock in pair:
                sock.close()
        return len(links)

    def idling(self) -> int:
        """How many connections are in IMAP IDLE now (the server's last word on them was "+ idling")."""
        with self._lock:
            return sum(pair[0] in self._idling for pair in self._links)

    def swallow(self) -> None:
        """Keep the open connections open but deliver nothing more on them, either way (a silent,
        half-open link); new connections work."""
        with self._lock:
            self._swallowed.update(sock for pair in self._links for sock in pair)

    def refuse(self) -> None:
        """Cut what is open and close every new connection at once (the server is "down")."""
        self.refusing = True
        self.cut()

    def heal(self) -> None:
        self.refusing = False

    # -- plumbing ------------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.refusing:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._links.append((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, client), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if src is not client:
                    if data.startswith(b"+ idling") or b"\r\n+ idling" in data:
                        self.idles += 1
                        self._idling.add(client)
                    else:
                        self._idling.discard(client)
                if src not in self._swallowed:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            if src not in self._cut:  # else cut() resets the sockets itself
                for sock in (src, dst):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST rather than FIN, as a network fault does."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    except OSError:
        pass
