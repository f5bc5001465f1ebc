"""Serving the console with uvicorn: `serve` for the `web` command (until SIGINT/SIGTERM), `Background`
for the demo and the tests (a thread). Access logs are off: a query string may carry an address
(?q=...); the console logs method, path and status itself."""

from __future__ import annotations

import threading
import time

import uvicorn
from sqlalchemy import Engine
from starlette.applications import Starlette

from bot.settings import Settings
from bot.web.app import create_app


def _config(app: Starlette, settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, proxy_headers=True,
                          forwarded_allow_ips=settings.web.forwarded_allow_ips, server_header=False,
                          date_header=True, timeout_graceful_shutdown=5)


def serve(settings: Settings, engine: Engine, *, host: str, port: int) -> None:
    app = create_app(settings, engine)
    try:
        uvicorn.Server(_config(app, settings, host, port)).run()
    finally:
        app.state.console.sender.close()


class Background:
    """The console on a thread: started, it answers on `url`; stop() ends it."""

    def __init__(self, settings: Settings, engine: Engine, *, host: str = "127.0.0.1", port: int = 0,
                 app: Starlette | None = None) -> None:
        self.app = app or create_app(settings, engine)
        self.server = uvicorn.Server(_config(self.app, settings, host, port))
        self.thread = threading.Thread(target=self.server.run, name="console", daemon=True)
        self.host = host

    def start(self, timeout: float = 20.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console did not start (is the port taken?)")
            time.sleep(0.02)
        return self.url

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.app.state.console.sender.close()
