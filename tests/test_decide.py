import pytest

from bot.core.decide import Action, Known, Limits, Sent, decide, limit_reached
from bot.core.model import Flag, Kind, Status, Suppress
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
               Known(case_ref="PRV-2026-00001", case_requester="ruth@example.com"), reply_cap=3)
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


# -- issue 10: trust (SPEC section 9) ---------------------------------------------------------------

@pytest.mark.parametrize(("sender", "requester", "joins"), [
    ("ruth@example.com", "ruth@example.com", True),
    ("Ruth+case@Example.COM", "ruth@example.com", True),  # the same requester, normalised
    ("mallory@example.net", "ruth@example.com", False),
    ("ruth@example.com.evil.test", "ruth@example.com", False),
])
def test_a_mail_joins_a_case_only_from_its_requester(sender, requester, joins):
    d = decide(inbound(from_addr=sender), sorted_as(K.DELETION, recipient=sender),
               Known(case_ref="PRV-2026-00001", case_requester=requester), reply_cap=3)
    if joins:
        assert d.action is Action.FOLLOW_UP and not d.flags
    else:  # a case of its own, with its own acknowledgement, flagged with the reference it mentioned
        assert d.action is Action.NEW_CASE and d.template == "ack_rights"
        assert Flag.MENTIONS_OTHER_CASE in d.flags and "mentions PRV-2026-00001" in d.reason


@pytest.mark.parametrize(("sent", "limit"), [
    (Sent(2, 19, 99), ""),
    (Sent(3, 0, 0), "policy.max_auto_replies_per_sender_per_day"),
    (Sent(0, 20, 0), "policy.max_auto_replies_per_domain_per_hour"),
    (Sent(0, 0, 100), "policy.max_auto_replies_per_hour"),
])
def test_limits_per_sender_domain_and_in_all(sent, limit):
    limits = Limits(per_sender_per_day=3, per_domain_per_hour=20, per_hour=100)
    assert limit_reached(sent, limits) == limit
    d = decide(inbound(), sorted_as(K.DISCLOSURE),
               Known(replies_to_sender_24h=sent.to_sender_24h, replies_to_domain_1h=sent.to_domain_1h,
                     replies_1h=sent.all_1h), reply_cap=3, limits=limits)
    assert d.action is Action.NEW_CASE
    if limit:  # opened for staff, no mail
        assert (d.template, d.status, d.limit, d.for_staff) == ("", Status.NEEDS_STAFF, limit, True)
        assert Flag.LIMIT_REACHED in d.flags
    else:
        assert d.template == "ack_rights"


def test_dmarc_fail_from_a_trusted_server_is_a_flagged_case_without_mail():
    d = decide(inbound(), sorted_as(K.DELETION, flags=(Flag.DMARC_FAIL,)), Known(), reply_cap=3)
    assert (d.action, d.template, d.status) == (Action.NEW_CASE, "", Status.NEEDS_STAFF)
    assert Flag.DMARC_FAIL in d.flags and "dmarc=fail" in d.reason


def test_a_sorter_error_sends_nothing():
    d = decide(inbound(), sorted_as(K.DELETION, error="the sorter failed: RecursionError"), Known(), reply_cap=3)
    assert d.action is Action.QUARANTINED and d.template == "" and "RecursionError" in d.reason
