"""Shared pieces of the benchmark: machine facts, servers, mail, the bot as a subprocess, RSS, figures.

Everything here measures; nothing here holds a figure. The servers come from tests.mailservers
(the same Dovecot and aiosmtpd the integration tests use), the bot's config from tests.botrun.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import re
import secrets
import shlex
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.botrun import ROOT, write_config
from tests.mailservers import Captured, Dovecot, SmtpSink

PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


# ---------------------------------------------------------------------------------------------
# the table


@dataclass
class Row:
    """One line of the result table. `met` is None when the figure has no target."""

    section: str
    name: str
    value: float | int | str | None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_table(rows: Sequence[Row]) -> str:
    head = ("section", "measurement", "value", "unit", "target", "met", "note")
    body = [(r.section, r.name, fmt(r.value), r.unit, r.target,
             "" if r.met is None else ("yes" if r.met else "NO"), r.note) for r in rows]
    widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i]) for i in range(len(head))]
    align = ["<", "<", ">", "<", "<", "<", "<"]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths, strict=False)).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    last = None
    for b in body:
        if last is not None and b[0] != last:
            out.append("")
        out.append(line(b))
        last = b[0]
    return "\n".join(out)


def percentile(values: Sequence[float], p: float) -> float | None:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


# ---------------------------------------------------------------------------------------------
# the machine


def _first(pattern: str, text: str, default: str = "?") -> str:
    m = re.search(pattern, text, re.MULTILINE)
    return m.group(1).strip() if m else default


def machine() -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem_kb = int(_first(r"^MemTotal:\s+(\d+)", meminfo, "0"))
    try:
        dovecot = subprocess.run(["/usr/sbin/dovecot", "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    except OSError:
        dovecot = "not installed"
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", "bot"],
                               cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.split("\n")
        changed = [ln[3:] for ln in dirty if ln.strip()]
        if changed:
            git += " + uncommitted changes in " + ", ".join(changed)
    except OSError:
        git = "?"
    return {
        "cpu": _first(r"^model name\s*:\s*(.+)$", cpuinfo, platform.processor() or "?"),
        "cores": str(os.cpu_count()),
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "dovecot": dovecot,
        "code": git,
    }


def command_line() -> str:
    exe = os.path.relpath(sys.executable, Path.cwd()) if sys.executable.startswith(str(Path.cwd())) else sys.executable
    return shlex.join([exe, "-m", "bench.run", *sys.argv[1:]])


# ---------------------------------------------------------------------------------------------
# the SMTP sink: a timestamp and In-Reply-To per message, without keeping whole replies


_IN_REPLY_TO = re.compile(rb"^In-Reply-To:[ \t]*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Receipt:
    at: float  # time.monotonic() when the sink accepted it
    in_reply_to: str
    size: int
    rcpt: str


class TimedSink(SmtpSink):
    """SmtpSink that records (time, In-Reply-To, size) per accepted message and drops the bytes."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.receipts: list[Receipt] = []

    def _record(self, captured: Captured) -> None:  # called on the sink's loop thread
        now = time.monotonic()
        head = captured.raw.split(b"\r\n\r\n", 1)[0]
        m = _IN_REPLY_TO.search(head)
        receipt = Receipt(now, m.group(1).decode(errors="replace") if m else "", len(captured.raw),
                          captured.rcpt_tos[0] if captured.rcpt_tos else "")
        with self._lock:
            self.receipts.append(receipt)
            self._lock.notify_all()

    def count(self) -> int:
        with self._lock:
            return len(self.receipts)

    def wait_count(self, n: int, timeout: float) -> bool:
        with self._lock:
            return self._lock.wait_for(lambda: len(self.receipts) >= n, timeout=timeout)

    def reset(self) -> None:
        with self._lock:
            self.receipts.clear()


# ---------------------------------------------------------------------------------------------
# inquiries: the end-to-end test's 22, each with its own sender (the per-sender reply cap) and Message-ID


def inquiry(i: int) -> tuple[str, bytes]:
    """(Message-ID, raw bytes) of inquiry number i; senders are unique so the daily reply cap never applies."""
    from tests.test_end_to_end import INQUIRIES, inquiry_bytes

    q = INQUIRIES[i % len(INQUIRIES)]

    def unique(addr_text: str) -> str:
        return re.sub(r"([\w.\-]+)@", lambda m: f"{m.group(1)}+b{i}@", addr_text, count=1)

    q = dataclasses.replace(q, sender=unique(q.sender), reply_to=unique(q.reply_to) if q.reply_to else "")
    return f"<inq-{i}@customer.test>", inquiry_bytes(i, q)


def big_inquiry(i: int, attachment_bytes: int) -> tuple[str, bytes]:
    """An English disclosure request carrying one attachment of `attachment_bytes` (base64 on the wire)."""
    from datetime import UTC, datetime
    from email.message import EmailMessage
    from email.utils import format_datetime

    mid = f"<big-{i}@customer.test>"
    m = EmailMessage()
    m["From"] = f"Big Sender <big.sender+b{i}@example.com>"
    m["To"] = "privacy@bot.test"
    m["Subject"] = "My data (scan attached)"
    m["Date"] = format_datetime(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))
    m["Message-ID"] = mid
    m.set_content("Please send me a copy of all personal information you hold about me. My ID scan is attached.")
    m.add_attachment(os.urandom(attachment_bytes), maintype="application", subtype="octet-stream",
                     filename="id-scan.bin")
    return mid, m.as_bytes(policy=m.policy.clone(linesep="\r\n"))


# ---------------------------------------------------------------------------------------------
# databases


class Databases:
    """Fresh databases: a SQLite file in the work dir, or a new database on the local PostgreSQL."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self._pg: Any = None
        self._created: list[str] = []

    def new(self, label: str) -> str:
        if self.kind == "sqlite":
            path = self.workdir / f"{label}-{secrets.token_hex(3)}.db"
            return f"sqlite:///{path}"
        import psycopg

        if self._pg is None:
            self._pg = psycopg.connect(PG_ADMIN, autocommit=True)
        name = f"bot_bench_{label}_{secrets.token_hex(4)}"
        self._pg.execute(f'CREATE DATABASE "{name}"')
        self._created.append(name)
        return PG_URL.format(name=name)

    def close(self) -> None:
        if self._pg is None:
            return
        force = " WITH (FORCE)" if self._pg.info.server_version >= 130000 else ""
        for name in self._created:
            try:
                self._pg.execute(f'DROP DATABASE IF EXISTS "{name}"{force}')
            except Exception as exc:  # leave it, say so
                print(f"warning: could not drop database {name}: {exc}", file=sys.stderr)
        self._pg.close()
        self._pg = None

    def server_version(self) -> str:
        if self.kind == "sqlite":
            return f"SQLite {sqlite3.sqlite_version}"
        import psycopg

        with psycopg.connect(PG_ADMIN) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return f"PostgreSQL {row[0] if row else '?'}"


# ---------------------------------------------------------------------------------------------
# the servers and the run context


@dataclass
class Context:
    args: Any
    workdir: Path
    dovecot: Dovecot
    sink: TimedSink
    dbs: Databases
    shared: dict[str, Any] = field(default_factory=dict)  # figures one section hands to a later one

    def config(self, label: str, *, user: str = "bot", db_url: str | None = None,
               overrides: dict[str, dict[str, Any]] | None = None) -> tuple[Path, str]:
        url = db_url or self.dbs.new(label)
        directory = self.workdir / f"cfg-{label}-{secrets.token_hex(3)}"
        password = Dovecot.USERS[user]
        # a bench measures throughput, not the limits on automatic mail (SPEC section 9): lift them unless asked
        lifted = {"max_auto_replies_per_sender_per_day": 10**6, "max_auto_replies_per_domain_per_hour": 10**6,
                  "max_auto_replies_per_hour": 10**6}
        overrides = {**(overrides or {}), "policy": {**lifted, **(overrides or {}).get("policy", {})}}
        path = write_config(directory, imap_port=self.dovecot.port, smtp_port=self.sink.port, db_url=url,
                            user=user, password=password, overrides=overrides)
        return path, url

    def mailbox_name(self, user: str = "bot", folder: str = "INBOX") -> str:
        return f"{user}@127.0.0.1:{self.dovecot.port}/{folder}"


@contextmanager
def servers(workdir: Path) -> Iterator[tuple[Dovecot, TimedSink]]:
    dovecot = Dovecot()
    sink = TimedSink()
    dovecot.start(workdir / "dovecot")
    try:
        sink.start()
        try:
            yield dovecot, sink
        finally:
            sink.stop()
    finally:
        dovecot.stop()


def append_fast(dovecot: Dovecot, raws: Sequence[bytes], *, user: str = "bot", flags: Sequence[bytes] = ()) -> list[int]:
    """APPEND over one connection (as Dovecot.append does), without the per-call reconnect."""
    return dovecot.append(list(raws), flags=flags, user=user)


# ---------------------------------------------------------------------------------------------
# the bot as a subprocess, watched


class RssWatch:
    """Polls /proc/<pid>/status (VmRSS, VmHWM) every `every` seconds until the process is gone."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid = pid
        self.every = every
        self.hwm_kb = 0
        self.rss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        try:
            text = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        m = re.search(r"^VmHWM:\s+(\d+)", text, re.MULTILINE)
        r = re.search(r"^VmRSS:\s+(\d+)", text, re.MULTILINE)
        if m:
            self.hwm_kb = max(self.hwm_kb, int(m.group(1)))
        if r:
            self.rss_kb = int(r.group(1))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


class BotRun:
    """`python run_bot.py --config X ARGS` with its stderr read line by line (timestamped) and its RSS polled.

    Peak RSS is the process's VmHWM, polled every 20-50 ms until it exits. (wait4's ru_maxrss is
    no use here: Linux carries the forking parent's RSS into the child's maximum across exec.)
    """

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None,
                 python_args: Sequence[str] = ()) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, *python_args, str(ROOT / "run_bot.py"), "--config", str(config), *args],
            cwd=ROOT, text=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, name="bot-stderr", daemon=True)
        self._reader.start()
        self.rss = RssWatch(self.proc.pid)
        self.returncode: int | None = None

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self._cond.notify_all()

    def wait_line(self, pattern: str, timeout: float) -> float | None:
        """Monotonic time of the first stderr line matching `pattern`, waiting up to `timeout`."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self._cond:
            while True:
                for at, text in self.lines:
                    if rx.search(text):
                        return at
                left = end - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._cond.wait(min(left, 0.2))

    def count_lines(self, pattern: str) -> int:
        rx = re.compile(pattern)
        with self._cond:
            return sum(1 for _, text in self.lines if rx.search(text))

    def tail(self, n: int = 15) -> str:
        with self._cond:
            return "\n".join(t for _, t in self.lines[-n:])

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()

    def finish(self, timeout: float = 60) -> int:
        """Wait for exit (SIGKILL after `timeout`), sampling VmHWM until the end."""
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self.rss.sample()
            time.sleep(0.02)
        if self.proc.poll() is None:
            self.proc.kill()
        self.returncode = self.proc.wait()
        self.rss.stop()
        self._reader.join(timeout=5)
        return self.returncode

    @property
    def peak_rss_mb(self) -> float:
        return self.rss.hwm_kb / 1024


def mb(kb: int) -> float:
    return kb / 1024
