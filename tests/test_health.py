"""`[health] listen`: /healthz and /metrics from `run` (SPEC section 8; issue 12 "Done when")."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.health import Observed, judge
from tests.botrun import bot_process, edit_config, http_get, wait_for_line, wait_status, write_config
from tests.factories import mail_bytes
from tests.mailservers import free_ports
from tests.proxy import FaultyProxy

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("leading", "reached", "db", "token", "ok", "reason"),
    [
        (True, 0, True, "", True, ""),
        (True, 599, True, "", True, ""),  # within two renewals of 300 s
        (True, 601, True, "", False, "mailbox last reached 601 s ago"),
        (True, None, True, "", False, "mailbox not reached yet"),
        (True, 10, False, "", False, "database not answering"),
        (True, 10, True, "invalid_grant", False, "oauth2 access token refused by the provider: invalid_grant"),
        (False, None, True, "", True, ""),  # another process watches the mailbox
        (False, None, False, "", False, "database not answering"),
    ],
)
def test_health_verdict(leading: bool, reached: int | None, db: bool, token: str, ok: bool, reason: str) -> None:
    at = None if reached is None else T0 - timedelta(seconds=reached)
    h = judge(Observed(now=T0, leading=leading, reached_at=at, renew_seconds=300, database_ok=db, token_error=token))
    assert h.ok is ok
    assert (reason in h.reasons[0]) if reason else h.reasons == ()


@pytest.mark.integration
def test_healthz_turns_503_within_two_renewals_of_the_mailbox_going_away_and_200_when_it_returns(
        tmp_path: Path, mailbox, smtp_sink) -> None:
    renew = 10
    port = free_ports(1)[0]
    with FaultyProxy(mailbox.port) as proxy:
        cfg = write_config(tmp_path, imap_port=proxy.port, smtp_port=smtp_sink.port,
                           db_url=f"sqlite:///{tmp_path}/bot.db")
        edit_config(cfg, {"mailbox": {"idle_renew_seconds": renew, "reconnect_max_seconds": 1},
                          "health": {"listen": f"127.0.0.1:{port}"}})
        log = tmp_path / "bot.log"
        with log.open("w") as err:
            proc = bot_process(cfg, "run", stderr=err)
            try:
                assert wait_status(port, 200, 20)[0] is not None, log.read_text()[-3000:]
                mailbox.append([mail_bytes(sender="ruth@example.com", subject="My data", message_id="<h1@c.test>",
                                           body="Please delete my personal data.")])
                smtp_sink.wait_for(1, timeout=15)
                assert wait_for_line(log, "outbox sent=1", 5)
                code, metrics = http_get(port, "/metrics")
                proxy.refuse()  # the mailbox goes away
                gone, body = wait_status(port, 503, 2 * renew + 5)
                assert gone is not None, log.read_text()[-3000:]
                assert "mailbox last reached" in body and "ruth" not in body and "bot@" not in body
                assert http_get(port, "/healthz")[0] == 503
                proxy.heal()
                back, _ = wait_status(port, 200, 15)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=30)
    assert gone <= 2 * renew + 2, gone  # the first renewal can be no older than the moment it went away
    assert back is not None, log.read_text()[-3000:]
    assert code == 200
    for line in ('bot_mail_taken_in_total{outcome="new_case"} 1.0', "bot_mail_sent_total 1.0",
                 'bot_send_failures_total{result="failed"} 0.0', "bot_outbox_waiting 0.0",
                 "bot_oldest_unanswered_inquiry_seconds 0.0", "bot_overdue_cases 0.0", "bot_leader 1.0",
                 "bot_database_up 1.0", "bot_healthy 1.0", "bot_mailbox_waiting_messages 0.0"):
        assert line in metrics, metrics
    assert "ruth" not in metrics and "bot_oauth2" not in metrics  # no oauth2 in use: no oauth2 metrics


@pytest.mark.integration
def test_health_listen_in_use_is_a_config_error(tmp_path: Path, mailbox, smtp_sink) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        cfg = write_config(tmp_path, imap_port=mailbox.port, smtp_port=smtp_sink.port,
                           db_url=f"sqlite:///{tmp_path}/bot.db")
        edit_config(cfg, {"health": {"listen": f"127.0.0.1:{port}"}})
        proc = bot_process(cfg, "run")
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "health.listen" in err and "Traceback" not in err
