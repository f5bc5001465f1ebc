"""The package as an admin installs it (SPEC section 8): a built wheel in a fresh virtualenv outside the
checkout, `privacy-bot init`, and mail answered through Dovecot and the SMTP sink from another working
directory, first with the packaged templates, then with an admin's edited copy of one of them.

The wheel is built and installed once for the module (about a minute: pip resolves the dependencies
from the configured indexes, from its cache when it has them); each test then inits its own folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.botrun import DELETE, ROOT, edit_config
from tests.conftest import unavailable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

EDIT = "THIS LINE WAS ADDED BY THE ADMIN."


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def command(self) -> Path:
        return self.venv / "bin" / "privacy-bot"

    @property
    def site_packages(self) -> Path:
        return next((self.venv / "lib").glob("python3*/site-packages"))

    def run(self, *args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "PYTHON", "VIRTUAL_ENV"))}
        return subprocess.run([str(self.command), *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout)


def _pip(python: Path | str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """The wheel of the checkout, installed with its dependencies into a new virtualenv in /tmp."""
    place = tmp_path_factory.mktemp("install")
    assert not place.is_relative_to(ROOT)
    built = _pip(sys.executable, "wheel", "--no-deps", "-q", "-w", str(place / "dist"), str(ROOT))
    if built.returncode:
        unavailable(f"pip wheel of the checkout failed (package index reachable?): {built.stderr[-800:]}")
    wheel = next((place / "dist").glob("privacy_mailbox_bot-*.whl"))
    venv = place / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = _pip(venv / "bin" / "python", "install", "-q", str(wheel))
    if done.returncode:
        unavailable(f"pip install of the wheel failed (package index reachable?): {done.stderr[-800:]}")
    yield Installed(wheel, venv)


def inquiry(number: int, sender: str, subject: str, body: str) -> bytes:
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, "privacy@bot.test", subject
    m["Message-ID"] = f"<install-{number}@customer.test>"
    m["Date"] = "Tue, 01 Dec 2026 10:00:00 +0900"
    m.set_content(body)
    return m.as_bytes()


ENGLISH = inquiry(1, "Ruth Adams <ruth.adams@example.com>", "My data",
                  "Please send me a copy of all personal information you hold about me.")
JAPANESE = inquiry(2, "Ken Ito <ken.ito@example.jp>", "個人情報の削除", "登録している私の個人情報を削除してください。")


def site_for(installed: Installed, tmp_path: Path, mailbox: Any, smtp_sink: Any) -> tuple[Path, Path]:
    """`init` into tmp_path/site from an unrelated folder, then the admin's edits for the test servers.
    Returns (the config, the empty working directory every command runs in)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    site = tmp_path / "site"
    r = installed.run("init", str(site), "--data-dir", str(tmp_path / "data"), cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert "templates check" in r.stdout and (site / "templates" / "ack_rights.en.txt.j2").is_file()
    (tmp_path / "data").mkdir()
    config = edit_config(site / "bot.toml", {
        "mailbox": {"host": "127.0.0.1", "port": mailbox.port, "security": "none", "username": mailbox.user,
                    "password": mailbox.password, "first_start": "all"},
        "smtp": {"host": "127.0.0.1", "port": smtp_sink.port, "security": "none", "from_address": "privacy@bot.test",
                 "retry_base_seconds": 1},
        "staff": {"digest_recipients": []},
    })
    db = installed.run("--config", str(config), "db", "upgrade", cwd=elsewhere)
    if "invalid choice" not in db.stderr:  # `db upgrade` exists (Alembic): the admin runs it first
        assert db.returncode == 0, db.stderr
    return config, elsewhere


def answer(installed: Installed, config: Path, cwd: Path, mailbox: Any, smtp_sink: Any,
           raws: list[bytes]) -> dict[str, EmailMessage]:
    """The replies to `raws` after one `run --once`, by the inquiry's Message-ID."""
    mailbox.append(raws)
    r = installed.run("--config", str(config), "run", "--once", cwd=cwd)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "not found" not in r.stderr, r.stderr[-2000:]
    replies = {str(c.message["In-Reply-To"]).strip(): c.message for c in smtp_sink.wait_for(len(raws), timeout=30)}
    assert list(cwd.iterdir()) == []  # nothing lands in the working directory
    return replies


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def form_of(message: EmailMessage) -> bytes:
    pdfs = [p.get_content() for p in message.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1
    return bytes(pdfs[0])


def check_sources(installed: Installed, config: Path, cwd: Path) -> dict[str, list[str]]:
    r = installed.run("--config", str(config), "templates", "check", cwd=cwd)
    assert r.returncode == 0, r.stderr
    return {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines() if line.endswith(".j2")}


def test_the_wheel_carries_the_defaults_the_fonts_and_the_units(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for name in ("bot/defaults/templates/ack_rights.ja.txt.j2", "bot/defaults/templates/staff/digest.en.html.j2",
                 "bot/defaults/rules.toml", "bot/defaults/bot.example.toml",
                 "bot/defaults/systemd/privacy-bot.service", "bot/defaults/systemd/privacy-bot-web.service",
                 "bot/compose/fonts/ipaexg.ttf", "bot/compose/fonts/IPA_Font_License_Agreement_v1.0.txt",
                 "bot/compose/fonts/LiberationSans-Regular.ttf", "bot/compose/fonts/LiberationSans-Bold.ttf",
                 "bot/compose/fonts/LiberationSans-OFL-1.1.txt", "bot/core/classify/model.json"):
        assert name in names, name
    templates = {n for n in names if n.startswith("bot/defaults/templates/")}
    assert len(templates) == len(list((ROOT / "templates").rglob("*.j2")))
    assert installed.wheel.stat().st_size < 10 * 1024 * 1024


def test_installed_wheel_answers_with_the_packaged_templates(installed: Installed, tmp_path: Path, mailbox: Any,
                                                             smtp_sink: Any) -> None:
    config, cwd = site_for(installed, tmp_path, mailbox, smtp_sink)
    edit_config(config, {"paths": {"templates": DELETE, "rules": DELETE}})  # nothing of the admin's: the package's
    sources = check_sources(installed, config, cwd)
    assert sources and all(where == "packaged" for where, _ in sources.values()), sources
    assert all(Path(path).is_relative_to(installed.site_packages) for _, path in sources.values())
    replies = answer(installed, config, cwd, mailbox, smtp_sink, [ENGLISH, JAPANESE])
    english, japanese = replies["<install-1@customer.test>"], replies["<install-2@customer.test>"]
    assert "disclosure" in body(english).lower() and EDIT not in body(english)
    assert "削除" in body(japanese)
    assert b"IPAexGothic" in form_of(japanese) and b"Helvetica" not in form_of(japanese)  # the packaged font
    assert b"LiberationSans" in form_of(english)


def test_installed_wheel_answers_with_the_admins_edited_template(installed: Installed, tmp_path: Path, mailbox: Any,
                                                                 smtp_sink: Any) -> None:
    config, cwd = site_for(installed, tmp_path, mailbox, smtp_sink)
    templates = config.parent / "templates"
    mine = templates / "ack_rights.en.txt.j2"
    for path in templates.rglob("*.j2"):  # the admin keeps only what they change, as init advises
        if path != mine:
            path.unlink()
    subject, rest = mine.read_text().split("\n", 1)
    mine.write_text(f"{subject}\n{rest.rstrip()}\n\n{EDIT}\n")
    sources = check_sources(installed, config, cwd)
    assert sources["ack_rights.en.txt.j2"] == ["admin", str(mine)]
    assert {name for name, (where, _) in sources.items() if where == "admin"} == {"ack_rights.en.txt.j2"}
    replies = answer(installed, config, cwd, mailbox, smtp_sink, [ENGLISH, JAPANESE])
    english, japanese = replies["<install-1@customer.test>"], replies["<install-2@customer.test>"]
    assert EDIT in body(english)
    assert "disclosure" in body(english).lower() and "privacy@bot.test" in body(english)  # packaged partials
    assert "削除" in body(japanese) and EDIT not in body(japanese)
