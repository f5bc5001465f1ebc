"""Running the bot from the outside in tests: a config file for the test servers, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parents[1]


DELETE = object()  # in `overrides`: leave this key out of the file


def base_config(*, imap_port: int, smtp_port: int, db_url: str, user: str = "bot",
                password: str = "botpass") -> dict[str, dict[str, Any]]:
    """The test servers' config as data."""
    return {
        "mailbox": {"host": "127.0.0.1", "port": imap_port, "security": "none", "username": user,
                    "password": password, "folder": "INBOX", "first_start": "all", "idle_renew_seconds": 60},
        "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none", "from_address": "privacy@bot.test",
                 "from_name": "Privacy Office", "retry_base_seconds": 1},
        "database": {"url": db_url},
        "staff": {"digest_recipients": []},
        "policy": {"timezone": "Asia/Tokyo", "response_days": 14,
                   "postal_address": "Privacy Office, 1-1 Takashima, Nishi-ku, Yokohama 220-8686, Japan",
                   "max_auto_replies_per_sender_per_day": 3, "company_name": "Example K.K."},
        "paths": {"templates": str(ROOT / "templates"), "rules": str(ROOT / "config" / "rules.toml")},
    }


def merged(config: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]] | None) -> dict[str, dict[str, Any]]:
    out = {section: dict(values) for section, values in config.items()}
    for section, values in (overrides or {}).items():
        target = out.setdefault(section, {})
        for key, value in values.items():
            if value is DELETE:
                target.pop(key, None)
            else:
                target[key] = value
    return out


def write_config(directory: Path, *, imap_port: int, smtp_port: int, db_url: str, user: str = "bot",
                 password: str = "botpass", overrides: dict[str, dict[str, Any]] | None = None,
                 name: str = "bot.toml") -> Path:
    """A config file for the test servers, with `overrides` ({section: {key: value or DELETE}}) applied."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    data = merged(base_config(imap_port=imap_port, smtp_port=smtp_port, db_url=db_url, user=user,
                              password=password), overrides)
    path.write_text(tomli_w.dumps(data))
    return path


def edit_config(path: Path, overrides: dict[str, dict[str, Any]]) -> Path:
    """Apply `overrides` to an existing config file."""
    path.write_text(tomli_w.dumps(merged(tomllib.loads(path.read_text()), overrides)))
    return path


def bot(config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", str(config), *args],
                          cwd=ROOT, text=True, capture_output=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def bot_process(config: Path, *args: str, env: dict[str, str] | None = None,
                stderr: Any = subprocess.PIPE, pause_after_reply: Path | None = None) -> subprocess.Popen[str]:
    """`run_bot.py` as a process; with `pause_after_reply`, one that stops for good (writing that file)
    once the first reply is recorded and before it is sent (tests/paused_run.py)."""
    entry = [str(ROOT / "run_bot.py")] if pause_after_reply is None else ["-m", "tests.paused_run", str(pause_after_reply)]
    return subprocess.Popen([sys.executable, *entry, "--config", str(config), *args],
                            cwd=ROOT, text=True, stdout=subprocess.PIPE, stderr=stderr,
                            env={**os.environ, **(env or {})})


def cases(config: Path) -> list[dict[str, Any]]:
    result = bot(config, "cases", "list", "--json")
    assert result.returncode == 0, result.stderr
    data: list[dict[str, Any]] = json.loads(result.stdout)
    return data


def case_detail(config: Path, ref: str) -> dict[str, Any]:
    result = bot(config, "cases", "show", ref, "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def wait_for_line(path: Path, text: str, timeout: float, *, after: int = 0) -> bool:
    """Wait until `text` appears in the log file at `path` (past its first `after` characters)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text(errors="replace")[after:]:
            return True
        time.sleep(0.05)
    return False


def with_health(config: Path) -> int:
    """Give the bot of `config` its health endpoint ([health] listen) on a free port; returns the port."""
    from tests.mailservers import free_ports

    port = free_ports(1)[0]
    edit_config(config, {"health": {"listen": f"127.0.0.1:{port}"}})
    return port


def http_get(port: int, path: str = "/healthz") -> tuple[int, str]:
    """(status, body) of GET `path` on the bot's health listener; (0, why) while nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def health(port: int) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of the bot's /healthz; (0, {}) while nothing answers."""
    status, body = http_get(port)
    try:
        return status, (json.loads(body or "{}") if status else {})
    except ValueError:
        return 0, {}


def wait_status(port: int, status: int, timeout: float) -> tuple[float | None, str]:
    """(seconds it took, body) once /healthz answers `status`; (None, the last body) after `timeout`."""
    start, body = time.monotonic(), ""
    while time.monotonic() - start < timeout:
        code, body = http_get(port)
        if code == status:
            return time.monotonic() - start, body
        time.sleep(0.1)
    return None, body


def wait_health(port: int, *, timeout: float, status: int = 200, role: str = "leader") -> dict[str, Any]:
    """Wait until the bot's /healthz answers `status` in `role` (leader: it watches the mailbox and has
    reached it; standby: another process leads); AssertionError with the last answer otherwise."""
    deadline = time.monotonic() + timeout
    last: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        last = health(port)
        if last[0] == status and last[1].get("role") == role:
            return last[1]
        time.sleep(0.05)
    raise AssertionError(f"/healthz never answered {status} as {role} within {timeout} s: last {last}")


def outbox(db_url: str) -> list[tuple[str, str, int]]:
    """(message_id, status, attempts) of every outbox row of a SQLite database, read beside the bot."""
    import sqlite3

    path = db_url.split(":///", 1)[1]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return [tuple(row) for row in conn.execute("SELECT message_id, status, attempts FROM outbox")]


def recorded_in(db_url: str, message_id: str) -> bool:
    """Whether the bot recorded the mail with this Message-ID (SQLite, read beside the bot)."""
    import sqlite3

    path = db_url.split(":///", 1)[1]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        return conn.execute("SELECT 1 FROM messages WHERE message_id = ?", (message_id,)).fetchone() is not None


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")
