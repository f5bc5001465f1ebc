import pytest

from bot.core.decide import Action, Known, decide
from bot.core.model import Kind, Status, Suppress
from tests.factories import inbound, sorted_as

K = Kind


@pytest.mark.parametrize(
    ("kinds", "status", "template", "form"),
    [
        ((K.DISCLOSURE,), Status.AWAITING_DOCUMENTS, "ack_rights", True),
        ((K.DELETION, K.MARKETING_OPT_OUT), Status.AWAITING_DOCUMENTS, "ack_rights", True),
        ((K.THIRD_PARTY_STOP,), Status.AWAITING_DOCUMENTS, "ack_rights", True),
        ((K.MARKETING_OPT_OUT,), Status.IN_PROGRESS, "ack_opt_out", False),
        ((K.GENERAL,), Status.NEEDS_STAFF, "ack_general", False),
        ((), Status.NEEDS_STAFF, "ack_general", False),
        ((K.GENERAL, K.AMENDMENT), Status.AWAITING_DOCUMENTS, "ack_rights", True),
    ],
)
def test_new_case_status_and_reply(kinds, status, template, form):
    d = decide(inbound(), sorted_as(*kinds), Known(), reply_cap=3)
    assert (d.action, d.status, d.template, d.attach_form) == (Action.NEW_CASE, status, template, form)
    assert d.kinds == (kinds or (K.GENERAL,))


def test_unsorted_mail_is_general_and_says_so():
    d = decide(inbound(), sorted_as(), Known(), reply_cap=3)
    assert d.kinds == (K.GENERAL,) and "handed to staff" in d.reason


@pytest.mark.parametrize("suppress", list(Suppress))
def test_suppressed_mail_is_ignored_with_evidence(suppress):
    d = decide(inbound(), sorted_as(K.DELETION, suppress=suppress, suppress_evidence="hdr X"), Known(), reply_cap=3)
    assert d.action is Action.IGNORED and d.template == "" and suppress.value in d.reason and "hdr X" in d.reason


def test_follow_up_joins_case_without_reply_even_from_an_autoreply():
    d = decide(inbound(), sorted_as(suppress=Suppress.AUTO_REPLY, suppress_evidence="Auto-Submitted"),
               Known(case_ref="PRV-2026-00001"), reply_cap=3)
    assert d.action is Action.FOLLOW_UP and d.template == "" and "PRV-2026-00001" in d.reason


def test_duplicate_wins_over_everything_but_parse_error():
    assert decide(inbound(), sorted_as(K.DELETION), Known(duplicate=True, case_ref="X"), reply_cap=3).action \
        is Action.DUPLICATE
    assert decide(inbound(parse_error="empty"), sorted_as(), Known(duplicate=True), reply_cap=3).action \
        is Action.QUARANTINED


@pytest.mark.parametrize(("sent", "cap", "replies"), [(0, 3, True), (2, 3, True), (3, 3, False), (0, 0, False)])
def test_reply_cap(sent, cap, replies):
    d = decide(inbound(), sorted_as(K.DISCLOSURE), Known(replies_to_sender_24h=sent), reply_cap=cap)
    assert d.action is Action.NEW_CASE
    assert bool(d.template) is replies
    if not replies:
        assert "cap" in d.reason
