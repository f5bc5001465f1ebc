"""Schema migrations (issue 12, SPEC section 8): a database made by release 6baab05 upgrades without
loss and goes on working; the baseline revision is exactly that release's schema; tables.py and the
migrations agree; `run` and the staff commands refuse an older schema with a message naming
`privacy-bot db upgrade`; an empty database gets the schema at first start.

The old release runs for real: `git archive 6baab05` into a temporary folder, then its own
`run_bot.py` with this virtualenv's Python (its dependencies are today's, see its pyproject.toml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, select, text

from bot.adapters.locks import Presence
from bot.adapters.store.engine import connect, make_engine, require_current_schema
from bot.adapters.store.migrations import alembic_config, differences, schema_transaction, upgrade
from bot.adapters.store.migrations.__main__ import next_revision_id
from bot.adapters.store.schema import BASELINE, History, Layout, judge, read_history, read_state
from bot.core.errors import SchemaError
from tests.botrun import ROOT, bot, write_config
from tests.factories import legacy_japanese_mail, mail_bytes

RELEASE = "6baab05"
UPGRADE = "privacy-bot db upgrade"
HEAD = read_history().head

# ---- the decision, as a table -----------------------------------------------------------------------------

LINE = History({"a": (), "b": ("a",), "c": ("b",)})
OURS = frozenset({"cases", "messages", "events", "mailbox_cursor", "mailbox_ledger", "outbox", "counters"})


@pytest.mark.parametrize(("tables", "recorded", "layout"), [
    (frozenset(), (), Layout.EMPTY),
    (frozenset({"someone_elses_table"}), (), Layout.EMPTY),
    (OURS, (), Layout.UNSTAMPED),
    (frozenset({"cases"}), (), Layout.UNSTAMPED),  # db upgrade then checks the layout and refuses
    (OURS | {"alembic_version"}, ("c",), Layout.CURRENT),
    (OURS | {"alembic_version"}, ("a",), Layout.OLDER),
    (OURS | {"alembic_version"}, ("b",), Layout.OLDER),
    (OURS | {"alembic_version"}, ("d_from_a_newer_release",), Layout.UNKNOWN),
    (OURS | {"alembic_version"}, ("b", "c"), Layout.UNKNOWN),
])
def test_where_a_database_stands(tables: frozenset[str], recorded: tuple[str, ...], layout: Layout) -> None:
    state = judge(tables, recorded, LINE)
    assert state.layout is layout
    assert state.head == "c"
    if layout is Layout.CURRENT:
        assert state.problem() is None
    elif layout in (Layout.OLDER, Layout.UNSTAMPED):
        assert f"`{UPGRADE}`" in (state.problem() or "")
    else:
        assert state.problem()


def test_two_newest_revisions_are_an_error_naming_both() -> None:
    with pytest.raises(SchemaError, match=r"2 newest revisions.*b1, b2"):
        _ = History({"a": (), "b1": ("a",), "b2": ("a",)}).head
    assert History({"a": (), "b1": ("a",), "b2": ("a",), "m": ("b1", "b2")}).head == "m"  # a merge revision


@pytest.mark.parametrize(("message", "existing", "expected"), [
    ("Add console accounts", ["0001_release_6baab05"], "0002_add_console_accounts"),
    ("sorter: corrections!", ["0001_release_6baab05", "0002_x", "0010_y"], "0011_sorter_corrections"),
    ("a very long message that goes on and on", ["0001_a"], "0002_a_very_long_message_that_go"),
    ("日本語", [], "0001_change"),
])
def test_next_revision_id(message: str, existing: list[str], expected: str) -> None:
    assert next_revision_id(message, existing) == expected
    assert len(expected) <= 32


def test_the_history_read_without_alembic_is_alembics() -> None:
    scripts = ScriptDirectory.from_config(alembic_config())
    assert scripts.get_heads() == [HEAD]  # one line of history: two branches' revisions need ordering
    assert {s.revision: tuple(s._all_down_revisions) for s in scripts.walk_revisions()} == dict(read_history().parents)
    assert scripts.get_base() == BASELINE


# ---- the models and the migrations -------------------------------------------------------------------------


def test_models_and_migrations_agree(db_url: str) -> None:
    """A table or column added to tables.py without a revision fails here (and `make_engine` would
    make a schema the code does not match)."""
    engine = make_engine(db_url)  # an empty database: made at the newest revision by the migrations
    try:
        assert read_state(engine).layout is Layout.CURRENT
        assert differences(engine) == []
    finally:
        engine.dispose()


def test_first_start_of_two_processes_makes_the_schema_once(db_url: str) -> None:
    barrier, errors = threading.Barrier(3), []

    def start() -> None:
        barrier.wait()
        try:
            make_engine(db_url).dispose()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    engine = connect(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    engine.dispose()


def test_schema_work_is_one_transaction(db_url: str) -> None:
    """What a failed upgrade did is rolled back, DDL included (SQLite's own connection, BEGIN IMMEDIATE)."""
    engine = make_engine(db_url)
    with pytest.raises(RuntimeError, match="a migration failed"), schema_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
        conn.execute(text("ALTER TABLE cases ADD COLUMN half_done VARCHAR(10)"))
        raise RuntimeError("a migration failed")
    assert differences(engine) == []  # no new column, no new table
    engine.dispose()


def test_a_revision_this_release_does_not_know_is_refused(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_a_newer_release'"))
    with pytest.raises(SchemaError, match="0099_from_a_newer_release, which this release does not know"):
        make_engine(db_url)
    with pytest.raises(SchemaError, match="does not know"):
        upgrade(engine)
    engine.dispose()


def test_tables_without_a_revision_but_not_the_baseline_layout_are_not_stamped(db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("ALTER TABLE cases ADD COLUMN note VARCHAR(10)"))
    with pytest.raises(SchemaError, match=r"not the layout of release 6baab05 .*unknown column cases\.note"):
        upgrade(engine)
    assert read_state(engine).layout is Layout.UNSTAMPED  # nothing recorded
    engine.dispose()


# ---- the commands -------------------------------------------------------------------------------------------


def offline_config(tmp_path: Path, db_url: str) -> Path:
    """A config for commands that never reach a mail server (ports nobody listens on)."""
    return write_config(tmp_path, imap_port=9, smtp_port=9, db_url=db_url)


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one line a command refusing an older schema prints (exit 2, no traceback)."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"`{UPGRADE}`" in lines[0], result.stderr
    return lines[0]


def test_commands_refuse_a_database_of_an_earlier_release_until_db_upgrade(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:  # the tables of release 6baab05, no revision: what an earlier release left
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    config = offline_config(tmp_path, db_url)

    assert "earlier release" in refused(bot(config, "run", "--once"))
    assert "earlier release" in refused(bot(config, "cases", "list"))
    assert "earlier release" in refused(bot(config, "digest", "--print"))
    current = bot(config, "db", "current")
    assert current.returncode == 0 and "none recorded" in current.stdout and f"`{UPGRADE}`" in current.stdout
    engine = connect(db_url)
    assert read_state(engine).layout is Layout.UNSTAMPED  # refusing changed nothing
    engine.dispose()

    up = bot(config, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"recorded as {BASELINE}" in up.stdout and HEAD in up.stdout
    assert bot(config, "db", "current").stdout.strip() == f"{HEAD} (the newest)"
    listed = bot(config, "cases", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    again = bot(config, "db", "upgrade")
    assert again.returncode == 0 and again.stdout.strip() == f"already at {HEAD} (the newest): nothing to upgrade"


def test_db_upgrade_of_an_empty_database_makes_the_schema(tmp_path: Path, db_url: str) -> None:
    config = offline_config(tmp_path, db_url)
    assert "no tables yet" in bot(config, "db", "current").stdout
    up = bot(config, "db", "upgrade")
    assert up.returncode == 0 and up.stdout.strip() == f"empty database: made the schema at {HEAD} (the newest)"
    engine = connect(db_url)
    require_current_schema(engine)
    assert differences(engine) == []
    engine.dispose()


def test_db_upgrade_waits_for_the_bot_to_stop(tmp_path: Path, db_url: str) -> None:
    engine = make_engine(db_url)
    config = offline_config(tmp_path, db_url)
    with Presence(engine) as running_bot:
        assert running_bot.try_lead()
        result = bot(config, "db", "upgrade")
        assert result.returncode == 1 and "a bot is running on this database" in result.stderr
    engine.dispose()  # the pooled PostgreSQL session held the lock: gone, as when the bot's process ends
    assert bot(config, "db", "upgrade").returncode == 0


def test_staff_commands_do_not_import_alembic(tmp_path: Path) -> None:
    """The schema check reads alembic_version itself: staff commands start without Alembic's 0.2 s."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    make_engine(url).dispose()
    config = offline_config(tmp_path, url)
    probe = ("import sys; from bot.cli import main; rc = main(sys.argv[1:]); "
             "print('alembic' in sys.modules, rc, file=sys.stderr)")
    for args in (["cases", "list"], ["db", "current"]):
        result = subprocess.run([sys.executable, "-c", probe, "--config", str(config), *args], cwd=ROOT,
                                capture_output=True, text=True, timeout=60)
        assert result.stderr.strip().splitlines()[-1] == "False 0", result.stderr


# ---- release 6baab05 --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last release's code, from this repository's history."""
    from tests.conftest import unavailable

    folder = tmp_path_factory.mktemp(f"release-{RELEASE}")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", RELEASE], capture_output=True)
    if archive.returncode != 0:
        unavailable(f"commit {RELEASE} is not in this checkout's history (a shallow clone?): "
                    f"{archive.stderr.decode(errors='replace').strip()}")
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    shown = old_bot(folder, None, "--help")
    assert shown.returncode == 0 and "{run,cases,templates,digest,config,demo}" in shown.stdout, shown  # the old CLI
    return folder


def old_bot(release: Path, config: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    """The old release's own command line: its folder first on sys.path, whatever PYTHONPATH says."""
    head = ["--config", str(config)] if config else []
    return subprocess.run([sys.executable, str(release / "run_bot.py"), *head, *args], cwd=release, text=True,
                          capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": str(release)})


def old_ok(release: Path, config: Path, *args: str) -> str:
    result = old_bot(release, config, *args)
    assert result.returncode == 0, f"release {RELEASE} {' '.join(args)}: {result.stderr[-2000:]}"
    return result.stdout


def schema_of(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Everything that makes the schema, as the database itself describes it (the version table left out)."""
    queries = {
        "sqlite": {"objects": "SELECT type, name, tbl_name, sql FROM sqlite_master "
                              "WHERE name NOT LIKE '%alembic_version%' ORDER BY name"},
        "postgresql": {
            "columns": "SELECT table_name, ordinal_position, column_name, data_type, character_maximum_length, "
                       "is_nullable, column_default FROM information_schema.columns "
                       "WHERE table_schema = current_schema() AND table_name <> 'alembic_version' ORDER BY 1, 2",
            "constraints": "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
                           "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                           "WHERE n.nspname = current_schema() AND c.conrelid::regclass::text <> 'alembic_version' "
                           "ORDER BY 1, 2",
            "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                       "AND tablename <> 'alembic_version' ORDER BY 1, 2",
            "sequences": "SELECT sequence_name, data_type, start_value, increment FROM information_schema.sequences "
                         "WHERE sequence_schema = current_schema() ORDER BY 1",
        },
    }[engine.dialect.name]
    with engine.connect() as conn:
        return {name: [tuple(row) for row in conn.execute(text(sql))] for name, sql in queries.items()}


def rows_of(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the version table, in primary-key order."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for name, t in sorted(meta.tables.items()) if name != "alembic_version"}


def test_the_baseline_is_the_schema_release_6baab05_made(release: Path, db_url: str,
                                                         request: pytest.FixtureRequest) -> None:
    probe = f"from bot.store import make_engine; make_engine({db_url!r}).dispose()"  # create_all, as it did
    made = subprocess.run([sys.executable, "-c", probe], cwd=release, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(release)})
    assert made.returncode == 0, made.stderr
    old = connect(db_url)
    old_schema = schema_of(old)
    old.dispose()
    assert old_schema and all(old_schema.values())

    if db_url.startswith("sqlite"):
        scratch_url, drop = db_url.replace("bot.db", "baseline.db"), None
    else:
        from tests.conftest import PG_URL

        pg = request.getfixturevalue("_pg")
        name = pg.create()
        scratch_url, drop = PG_URL.format(name=name), lambda: pg.drop(name)
    scratch = connect(scratch_url)
    try:
        with scratch.connect() as conn, conn.begin():
            command.upgrade(alembic_config(conn), BASELINE)
        assert schema_of(scratch) == old_schema
    finally:
        scratch.dispose()
        if drop:
            drop()


@pytest.mark.integration
def test_a_database_of_release_6baab05_upgrades_without_loss_and_works(
        release: Path, db_url: str, tmp_path: Path, mailbox: Any, smtp_sink: Any) -> None:
    sink = smtp_sink
    ports = {"imap_port": mailbox.port, "smtp_port": sink.port, "db_url": db_url}
    old_cfg = write_config(tmp_path, **ports, name="old.toml", overrides={
        "paths": {"templates": str(release / "templates"), "rules": str(release / "config" / "rules.toml")},
        "database": {"keep_bodies": True}, "staff": {"digest_recipients": ["dpo@bot.test"]}})
    new_cfg = write_config(tmp_path, **ports, name="new.toml", overrides={
        "database": {"keep_bodies": True}, "staff": {"digest_recipients": ["dpo@bot.test"]}})

    # -- the old release at work: inquiries, a customer's answer, staff actions, a digest
    mailbox.append([
        mail_bytes(sender="Ruth Adams <ruth.adams@example.com>", subject="My data", message_id="<old-1@customer.test>",
                   body="Please send me a copy of all personal information you hold about me."),
        legacy_japanese_mail(sender="Ken Ito <ken.ito@example.jp>", subject="個人情報の削除", charset="iso-2022-jp",
                             body="登録している私の個人情報を削除してください。", message_id="<old-2@customer.test>"),
        mail_bytes(sender="Mark Bell <mark.bell@example.org>", subject="Stop the brochures",
                   body="Please stop sending me marketing mail and brochures.", message_id="<old-3@customer.test>"),
        mail_bytes(sender="Paul Kim <paul.kim@example.com>", subject="A question", message_id="<old-4@customer.test>",
                   body="I have a question about your privacy policy: how long do you keep my personal information?"),
    ])
    old_ok(release, old_cfg, "run", "--once")
    sink.wait_for(4, timeout=10)
    engine = connect(db_url)
    with engine.connect() as conn:
        refs: dict[str, str] = {r[0]: r[1] for r in conn.execute(text("SELECT requester, ref FROM cases"))}
    assert len(refs) == 4
    ruth, ken, mark = refs["ruth.adams@example.com"], refs["ken.ito@example.jp"], refs["mark.bell@example.org"]
    mailbox.append([mail_bytes(sender="Ruth Adams <ruth.adams@example.com>", subject=f"Re: [{ruth}] My data",
                               body="My postal address: 1-2-3 Minato, Tokyo.", message_id="<old-5@customer.test>")])
    old_ok(release, old_cfg, "run", "--once")
    old_ok(release, old_cfg, "cases", "docs-received", ruth)
    old_ok(release, old_cfg, "cases", "extend", ruth, "--days", "7", "--reason", "ID copy illegible")
    old_ok(release, old_cfg, "cases", "close", mark, "--reason", "opt-out recorded")
    old_ok(release, old_cfg, "digest", "--send")
    sent_by_old = len(sink.wait_for(5, timeout=10))
    old_list = json.loads(old_ok(release, old_cfg, "cases", "list", "--json"))

    before = rows_of(engine)
    for table in ("cases", "messages", "events", "outbox", "mailbox_ledger", "mailbox_cursor", "counters"):
        assert before[table], f"release {RELEASE} left no {table} rows: the test would prove nothing"
    assert read_state(engine).layout is Layout.UNSTAMPED

    # -- this release refuses it as it is, and changes nothing
    assert "earlier release" in refused(bot(new_cfg, "run", "--once"))
    assert rows_of(engine) == before and read_state(engine).layout is Layout.UNSTAMPED

    # -- db upgrade: every row of every table as it was
    up = bot(new_cfg, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"recorded as {BASELINE}" in up.stdout
    assert rows_of(engine) == before
    assert bot(new_cfg, "db", "current").stdout.strip() == f"{HEAD} (the newest)"
    assert differences(engine) == []
    shown = {"ref", "status", "kinds", "requester", "language", "opened_at", "documents_received_at", "due_at",
             "responded_at", "closed_at", "overdue"}
    new_list = json.loads(bot(new_cfg, "cases", "list", "--json").stdout)
    assert sorted(({k: c[k] for k in shown} for c in new_list), key=lambda c: c["ref"]) == \
        sorted(({k: c[k] for k in shown} for c in old_list), key=lambda c: c["ref"])

    # -- and it works: a new inquiry gets the next reference, an answer to an old case joins it
    mailbox.append([
        mail_bytes(sender="Lia Chen <lia.chen@example.com>", subject="Delete my account",
                   body="I want you to delete my personal data and close my account.",
                   message_id="<new-1@customer.test>"),
        mail_bytes(sender="Ken Ito <ken.ito@example.jp>", subject=f"Re: [{ken}] 個人情報の削除",
                   body="書類を郵送しました。", message_id="<new-2@customer.test>"),
    ])
    run = bot(new_cfg, "run", "--once")
    assert run.returncode == 0, run.stderr[-2000:]
    sent = sink.wait_for(sent_by_old + 1, timeout=10)
    assert sent[-1].rcpt_tos == ("lia.chen@example.com",)
    with engine.connect() as conn:
        now_refs = {r[0]: r[1] for r in conn.execute(text("SELECT requester, ref FROM cases"))}
        ken_id = next(row[0] for row in before["cases"] if row[1] == ken)  # cases: id, ref, ...
        ken_mail = conn.execute(text("SELECT message_id FROM messages WHERE case_id = :c ORDER BY id"),
                                {"c": ken_id}).scalars().all()
    assert len(now_refs) == len(set(now_refs.values())) == 5
    lia = now_refs["lia.chen@example.com"]
    assert lia not in refs.values()
    if all(r.split("-")[1] == lia.split("-")[1] for r in refs.values()):  # a new year starts at 00001
        assert int(lia.rsplit("-", 1)[1]) == max(int(r.rsplit("-", 1)[1]) for r in refs.values()) + 1
    assert f"[{lia}]" in sent[-1].message["Subject"]
    old_ken_mail = [m[3] for m in before["messages"] if m[1] == ken_id]  # messages: id, case_id, direction, message_id
    assert ken_mail == [*old_ken_mail, "<new-2@customer.test>"]
    assert len(sink.messages()) == sent_by_old + 1  # no second acknowledgement for Ken

    # -- an older schema again (the revision gone, as before an upgrade): `run` refuses to start
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    assert "earlier release" in refused(bot(new_cfg, "run", timeout=60))
