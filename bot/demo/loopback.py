"""The plumbing of a mail server on loopback, shared by the demo's servers and the tests' SMTP sink:
an asyncio loop in a background thread, aiosmtpd connections tracked so they can be closed, and the
bytes of a message as the client sent them."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aiosmtpd.smtp import SMTP, Envelope

T = TypeVar("T")


class LoopThread:
    """An asyncio loop running in a daemon thread; coroutines are handed to it from other threads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already running")
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(target=_run_loop, args=(loop, ready), name=self.name, daemon=True)
        thread.start()
        ready.wait()
        self.loop, self._thread = loop, thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coro` on the loop and wait for its result."""
        if self.loop is None:
            coro.close()
            raise RuntimeError(f"{self.name} is not running")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def stop(self, timeout: float = 30) -> None:
        """Stop the loop, wait for its thread and close it (what was scheduled is dropped)."""
        loop, thread = self.loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=timeout)
        loop.close()
        self.loop = self._thread = None


class SmtpConnections:
    """The aiosmtpd connections a server made, so that stopping it closes every one of them."""

    def __init__(self) -> None:
        self._protocols: set[SMTP] = set()

    def track(self, make: Callable[[], SMTP]) -> Callable[[], SMTP]:
        """A protocol factory for `loop.create_server` that remembers what it made."""

        def factory() -> SMTP:
            protocol = make()
            self._protocols = {p for p in self._protocols if p.transport is not None}  # drop finished ones
            self._protocols.add(protocol)
            return protocol

        return factory

    def close(self) -> list[SMTP]:
        """Close every open connection; returns them, for `closed`."""
        protocols, self._protocols = list(self._protocols), set()
        for protocol in protocols:
            transport = protocol.transport
            if transport is not None and not transport.is_closing():
                transport.close()
        return protocols

    @staticmethod
    def closed(protocols: list[SMTP]) -> bool:
        return all(p.transport is None for p in protocols)


async def finish_tasks() -> None:
    """Cancel every other task of the running loop and wait for them (the last step of a server's close)."""
    me = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def until(condition: Callable[[], bool], timeout: float) -> None:
    """Wait, on the loop, until `condition()` holds or `timeout` seconds have passed."""
    end = asyncio.get_running_loop().time() + timeout
    while not condition() and asyncio.get_running_loop().time() < end:
        await asyncio.sleep(0.005)


def envelope_bytes(envelope: Envelope) -> bytes:
    """The message exactly as the client sent it (aiosmtpd's decoded `content` only as a fallback)."""
    raw = envelope.original_content
    if raw is None:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content or "").encode()
    return bytes(raw)


def crlf(raw: bytes) -> bytes:
    """Line endings as IMAP and SMTP want them."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
