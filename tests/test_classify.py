"""Table tests of the sorter: kinds, suppression, language, references, quoting, rule loading."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from bot.core.classify import classify, detect_language, find_ref, match_text, normalise, strip_quoted
from bot.core.classify.rules import rules_from_data
from bot.core.errors import ConfigError
from bot.core.model import Attachment, Flag, InboundEmail, Kind, Suppress
from bot.settings import default_rules_path, load_rules
from tests.factories import inbound

RULES = load_rules(default_rules_path())
OWN = frozenset({"privacy@example.com"})

D, A, ADD, DEL, TPS, MKT, GEN = (
    Kind.DISCLOSURE, Kind.AMENDMENT, Kind.ADDITION, Kind.DELETION,
    Kind.THIRD_PARTY_STOP, Kind.MARKETING_OPT_OUT, Kind.GENERAL,
)


def mail(**overrides: Any) -> InboundEmail:
    defaults: dict[str, Any] = dict(message_id="<q1@example.net>", from_addr="ruth.adams@example.net",
                                    from_name="Ruth Adams", subject="Hello", text="", size=1000)
    return inbound(**{**defaults, **overrides})


def sort(**overrides: Any) -> Any:
    return classify(mail(**overrides), RULES, own_addresses=OWN)


# --- kinds ------------------------------------------------------------------------------

KIND_ROWS = [
    # English, one kind each
    ("en-disclosure-copy", "My data", "Please send me a copy of all personal information you hold about me.", (D,)),
    ("en-disclosure-what", "Question", "What personal information do you hold about me?", (D,)),
    ("en-disclosure-sar", "Subject Access Request", "I am making a subject access request.", (D,)),
    ("en-amend-address", "Address", "Please correct my address, it is 1-2-3 Shiba.", (A,)),
    ("en-amend-wrong", "Hi", "My details are wrong in your records.", (A,)),
    ("en-amend-phone", "Hi", "Please update my phone number to 090-1234-5678.", (A,)),
    ("en-addition", "Hi", "Please add my new mobile number to my profile.", (ADD,)),
    ("en-deletion", "Hi", "Please delete my data.", (DEL,)),
    ("en-deletion-forgotten", "Right to be forgotten", "I invoke it.", (DEL,)),
    ("en-deletion-close", "Account", "Close my account and delete everything.", (DEL,)),
    ("en-third-party", "Hi", "Please stop sharing my data with third parties.", (TPS,)),
    ("en-do-not-sell", "Hi", "Do not sell my personal information.", (TPS,)),
    ("en-marketing", "Stop the brochures", "Please stop sending me marketing mail and brochures.", (MKT,)),
    ("en-unsubscribe", "unsubscribe me", "", (MKT,)),
    ("en-mailing-list", "Hi", "Remove my email address from your mailing list.", (MKT,)),
    ("en-general", "Question", "How do you use my data?", (GEN,)),
    ("en-general-retention", "A question", "How long do you keep my personal information?", (GEN,)),
    ("en-disclosure-do-you-hold", "Hi", "Do you hold any personal data about me?", (D,)),
    ("en-nothing", "Lunch", "Are we still on for Friday?", ()),
    ("en-deleted-by-mistake", "Resend", "I deleted the email by mistake, can you resend it?", ()),
    # Japanese, one kind each
    ("ja-disclosure", "開示請求", "保有個人データの開示を請求します。", (D,)),
    ("ja-disclosure-teach", "確認", "私の個人情報を教えてください。", (D,)),
    ("ja-amend", "住所の訂正", "登録されている住所が間違っています。訂正をお願いします。", (A,)),
    ("ja-amend-change", "住所変更", "引っ越したので住所を変更してください。", (A,)),
    ("ja-addition", "追加", "電話番号を追加してください。", (ADD,)),
    ("ja-deletion", "個人情報の削除", "登録している私の個人情報を削除してください。", (DEL,)),
    ("ja-third-party", "第三者提供", "第三者への提供をやめてください。", (TPS,)),
    ("ja-riyou-teishi", "利用停止", "利用停止をお願いします。", (TPS,)),
    ("ja-marketing", "DM", "ダイレクトメールは今後送らないでください。", (MKT,)),
    ("ja-melmaga", "配信停止", "メルマガの配信停止をお願いします。", (MKT,)),
    ("ja-general", "質問", "御社のプライバシーポリシーについて質問があります。", (GEN,)),
    ("ja-extra-question-not-addition", "追加", "追加で質問があります。", (GEN,)),
    ("ja-deleted-by-mistake", "再送", "メールを削除してしまいました。再送していただけますか。", ()),
    # several kinds in one mail, returned in Kind order
    ("en-several", "Requests", ("Please delete my data and stop sending me newsletters. "
                               "Also send me a copy of my data first."), (D, DEL, MKT)),
    ("ja-several", "依頼", "個人情報を削除し、DMの送付も停止してください。", (DEL, MKT)),
    # normalisation: full-width letters, half-width kana, line breaks inside Japanese words
    ("fullwidth-dm", "ＤＭ停止", "", (MKT,)),
    ("halfwidth-kana", "ﾃﾞｰﾀ", "ﾃﾞｰﾀを削除してください", (DEL,)),
    ("ja-wrapped-line", "依頼", "登録している個人情報を削\n除してください。", (DEL,)),
    ("fullwidth-english", "ＤＥＬＥＴＥ ＭＹ ＤＡＴＡ", "", (DEL,)),
    # quoted text and signatures do not count
    ("quoted-deletion", "Re: Your request", ("Thanks, that is all.\n\n"
     "On Mon, Jan 5, 2026 at 10:00 AM Privacy <privacy@example.com> wrote:\n"
     "> We will delete your data and remove your account."), ()),
    ("quoted-gt-lines", "Re: hi", "Fine.\n> please delete my data\n＞ 個人情報を削除してください", ()),
    ("outlook-block", "RE: hi", ("Thank you.\n\nFrom: Privacy Office\nSent: Monday, January 5, 2026\n"
     "To: Ruth\nSubject: hi\n\nWe can delete your data on request."), ()),
    ("ja-quote-header", "Re: 確認", ("承知しました。\n\n2026年1月5日(月) 10:00 Privacy <privacy@example.com>:\n"
     "個人情報を削除しますか"), ()),
    ("signature-unsubscribe", "Hello", "See you soon.\n-- \nRuth\nTo unsubscribe from my blog, reply STOP", ()),
    ("ja-signature-block", "こんにちは", ("よろしくお願いします。\n━━━━━━━━━━\n株式会社サンプル 山田\n"
     "TEL: 03-1234-5678\nMail: yamada@example.jp\nメルマガ配信停止はこちら\n━━━━━━━━━━"), ()),
]


@pytest.mark.parametrize(("subject", "text", "kinds"), [r[1:] for r in KIND_ROWS], ids=[r[0] for r in KIND_ROWS])
def test_kinds(subject: str, text: str, kinds: tuple[Kind, ...]) -> None:
    assert sort(subject=subject, text=text).kinds == kinds


def test_rules_lists_every_rule_that_fired() -> None:
    result = sort(subject="Requests", text="Please delete my data. Also unsubscribe me.")
    assert result.kinds == (DEL, MKT)
    assert result.rules == ("deletion.en.delete_my_data", "marketing_opt_out.en.opt_out", "general.en.privacy_question")


def test_a_genuine_request_is_not_suppressed() -> None:
    result = sort(subject="個人情報の削除", text="登録している私の個人情報を削除してください。")
    assert (result.suppress, result.suppress_evidence, result.language, result.flags) == (None, "", "ja", ())


# --- never reply -------------------------------------------------------------------------

AUTO_SUBJECT = "Automatic reply: your message"
SUPPRESS_ROWS: list[tuple[str, dict[str, Any], Suppress | None, str]] = [
    ("own-address", {"from_addr": "privacy@example.com"}, Suppress.OWN_ADDRESS, "own_address: privacy@example.com"),
    ("own-reply-to", {"reply_to": "privacy@example.com"}, Suppress.OWN_ADDRESS, "own_address: privacy@example.com"),
    ("bounce-report", {"content_type": "multipart/report", "report_type": "delivery-status"},
     Suppress.BOUNCE, "bounce.content_type: multipart/report; report-type=delivery-status"),
    ("bounce-arf", {"content_type": "multipart/report", "report_type": "feedback-report"},
     Suppress.BOUNCE, "bounce.content_type: multipart/report; report-type=feedback-report"),
    ("bounce-dsn-part", {"content_type": "multipart/mixed",
                         "attachments": (Attachment("", "message/delivery-status", 300),)},
     Suppress.BOUNCE, "bounce.part: a message/delivery-status part"),
    ("bounce-null-return-path", {"headers": (("return-path", "<>"),)},
     Suppress.BOUNCE, "bounce.return_path_empty: header return-path: <>"),
    ("bounce-mailer-daemon", {"from_addr": "mailer-daemon@mx.example.net"},
     Suppress.BOUNCE, "bounce.sender: From mailer-daemon@mx.example.net"),
    ("bounce-sender-name", {"from_addr": "", "from_name": "Mail Delivery Subsystem"},
     Suppress.BOUNCE, "bounce.sender_name: From 'Mail Delivery Subsystem'"),
    ("bounce-x-failed", {"headers": (("x-failed-recipients", "a@b.example"),)},
     Suppress.BOUNCE, "bounce.x_failed_recipients: header x-failed-recipients: a@b.example"),
    ("bounce-subject", {"subject": "Undeliverable: My data"},
     Suppress.BOUNCE, "bounce.subject /^undeliver(?:able|ed)\\b/: 'Undeliverable: My data'"),
    ("bounce-subject-ja", {"subject": "配信不能のお知らせ"},
     Suppress.BOUNCE, "bounce.subject /配信不能/: '配信不能のお知らせ'"),
    ("bounce-postmaster-with-text", {"from_addr": "postmaster@example.net",
                                     "text": "Your message could not be delivered to a@b.example."},
     Suppress.BOUNCE, "bounce.weak_sender: From postmaster@example.net and text"),
    ("postmaster-person-not-bounce", {"from_addr": "postmaster@example.net", "text": "Please delete my data."},
     None, ""),
    ("auto-submitted", {"headers": (("auto-submitted", "auto-replied"),)},
     Suppress.AUTO_REPLY, "auto_reply.auto_submitted: header auto-submitted: auto-replied"),
    ("auto-submitted-zimbra", {"headers": (("auto-submitted", "auto-replied (zimbra; vacation)"),)},
     Suppress.AUTO_REPLY, "auto_reply.auto_submitted: header auto-submitted: auto-replied (zimbra; vacation)"),
    ("auto-submitted-no", {"headers": (("auto-submitted", "no"),)}, None, ""),
    ("x-auto-response-suppress", {"headers": (("x-auto-response-suppress", "OOF, AutoReply"),)},
     Suppress.AUTO_REPLY, "auto_reply.x_auto_response_suppress: header x-auto-response-suppress: OOF, AutoReply"),
    ("x-autoreply", {"headers": (("x-autoreply", "yes"),)},
     Suppress.AUTO_REPLY, "auto_reply.x_autoreply: header x-autoreply: yes"),
    ("precedence-auto-reply", {"headers": (("precedence", "auto_reply"),)},
     Suppress.AUTO_REPLY, "auto_reply.precedence: header precedence: auto_reply"),
    ("auto-subject", {"subject": AUTO_SUBJECT}, Suppress.AUTO_REPLY, "auto_reply.subject"),
    ("auto-subject-ja", {"subject": "【自動返信】お問い合わせありがとうございます"}, Suppress.AUTO_REPLY, "auto_reply.subject"),
    ("auto-generated-subject", {"subject": "[AUTO GENERATED] Some subject"}, Suppress.AUTO_REPLY, "auto_reply.subject"),
    ("customer-mentions-auto-reply", {"subject": "自動返信メールが届きません"}, None, ""),
    ("exchange-loop-with-ooo-subject", {"subject": "I am out of the office",
                                        "headers": (("x-ms-exchange-inbox-rules-loop", "a@example.net"),)},
     Suppress.AUTO_REPLY, "auto_reply.subject"),
    ("exchange-loop-with-weak-subject", {"subject": "Re: data - away this week",
                                         "headers": (("x-ms-exchange-inbox-rules-loop", "a@example.net"),)},
     Suppress.AUTO_REPLY, ("auto_reply.exchange_rules_loop: header x-ms-exchange-inbox-rules-loop: a@example.net, "
                           "with auto_reply.weak_subject")),
    # negative control (like corpus normal__zammad__ooo_ms_normal_followup.eml)
    ("exchange-loop-alone-is-a-real-reply", {"subject": "some new subject - none",
                                             "headers": (("x-ms-exchange-inbox-rules-loop", "a@example.net"),)},
     None, ""),
    ("list-id", {"headers": (("list-id", "Example <list.example.com>"),)},
     Suppress.BULK, "bulk.list_id: header list-id: Example <list.example.com>"),
    ("list-unsubscribe", {"headers": (("list-unsubscribe", "<mailto:leave@example.com>"),)},
     Suppress.BULK, "bulk.list_unsubscribe: header list-unsubscribe: <mailto:leave@example.com>"),
    ("precedence-bulk", {"headers": (("precedence", "bulk"),)},
     Suppress.BULK, "bulk.precedence: header precedence: bulk"),
    ("precedence-junk", {"headers": (("precedence", "junk"),)},
     Suppress.BULK, "bulk.precedence: header precedence: junk"),
    ("list-request-sender", {"from_addr": "ppp-request@example.org"},
     Suppress.BULK, "bulk.sender: ppp-request@example.org"),
    ("list-bounces-sender-header", {"headers": (("sender", "list-bounces@example.com"),)},
     Suppress.BULK, "bulk.sender: list-bounces@example.com"),
    ("digest", {"content_type": "multipart/digest"}, Suppress.BULK, "bulk.content_type: multipart/digest"),
    ("named-empty-group", {"headers": (("to", "IETF-Announce:;"),)},
     Suppress.BULK, "bulk.to_named_group: header to: IETF-Announce:;"),
    ("undisclosed-recipients-is-fine", {"headers": (("to", "undisclosed-recipients:;"),)}, None, ""),
    ("noreply", {"from_addr": "noreply@shop.example.com"},
     Suppress.NO_REPLY_SENDER, "no_reply.local_part: noreply@shop.example.com"),
    ("do-not-reply", {"from_addr": "do-not-reply@shop.example.com"},
     Suppress.NO_REPLY_SENDER, "no_reply.local_part: do-not-reply@shop.example.com"),
    # SPEC section 9: Reply-To only for an authenticated sender; unauthenticated, the answer would go to From
    ("web-form-noreply-with-reply-to", {"from_addr": "noreply@forms.example.com", "reply_to": "ken@example.jp"},
     Suppress.NO_REPLY_SENDER, "no_reply.local_part: noreply@forms.example.com"),
    ("no-address", {"from_addr": "", "reply_to": ""},
     Suppress.INVALID_ADDRESS, "address.missing: no usable From or Reply-To address"),
    ("invalid-address", {"from_addr": "ruth@@example.net"}, Suppress.INVALID_ADDRESS, "address.invalid: ruth@@example.net"),
    ("reserved-domain", {"from_addr": "pete@silly.test"}, Suppress.INVALID_ADDRESS, "address.invalid: pete@silly.test"),
    ("old-docomo-address-accepted", {"from_addr": "taro..yamada@docomo.ne.jp"}, None, ""),
    ("old-carrier-subdomain-accepted", {"from_addr": "hanako.@d.vodafone.ne.jp"}, None, ""),
    ("double-dot-elsewhere-invalid", {"from_addr": "taro..yamada@example.jp"},
     Suppress.INVALID_ADDRESS, "address.invalid: taro..yamada@example.jp"),
    # order: own address before bounce, bounce before auto-reply, auto-reply before bulk
    ("order-own-first", {"from_addr": "privacy@example.com", "content_type": "multipart/report"},
     Suppress.OWN_ADDRESS, "own_address: privacy@example.com"),
    ("order-bounce-before-auto", {"subject": "Undelivered Mail Returned to Sender",
                                  "headers": (("auto-submitted", "auto-replied"),)},
     Suppress.BOUNCE, "bounce.subject"),
    ("null-sender-auto-reply-is-an-auto-reply", {"headers": (("return-path", "<>"), ("auto-submitted", "auto-replied"))},
     Suppress.AUTO_REPLY, "auto_reply.auto_submitted: header auto-submitted: auto-replied"),
    ("null-sender-before-bulk", {"headers": (("return-path", "<>"), ("precedence", "bulk"))},
     Suppress.BOUNCE, "bounce.return_path_empty: header return-path: <>"),
    ("order-auto-before-bulk", {"headers": (("precedence", "bulk"), ("x-autoreply", "yes"))},
     Suppress.AUTO_REPLY, "auto_reply.x_autoreply: header x-autoreply: yes"),
]


@pytest.mark.parametrize(("overrides", "suppress", "evidence"), [r[1:] for r in SUPPRESS_ROWS],
                         ids=[r[0] for r in SUPPRESS_ROWS])
def test_suppress(overrides: dict[str, Any], suppress: Suppress | None, evidence: str) -> None:
    result = sort(**overrides)
    assert result.suppress == suppress
    assert result.suppress_evidence.startswith(evidence)
    assert bool(result.suppress_evidence) == (suppress is not None)


# --- flags, language, reference ----------------------------------------------------------

@pytest.mark.parametrize(("results", "flags"), [
    (("mx.example.com; spf=pass; dkim=fail; dmarc=fail (p=reject) header.from=example.net",), ("dmarc_fail",)),
    (("mx.example.com; spf=pass; dmarc=pass header.from=example.net",), ()),
    # issue 10: only the trusted server's headers are read (the relay's line may be the sender's own)
    (("mx.example.com; dmarc=pass", "relay.example.com; DMARC=FAIL"), ()),
    (("relay.example.com; DMARC=FAIL",), ()),
    ((), ()),
])
def test_dmarc_flag(results: tuple[str, ...], flags: tuple[str, ...]) -> None:
    headers = tuple(("authentication-results", r) for r in results)
    assert classify(mail(headers=headers), RULES, own_addresses=OWN,
                    trusted_authserv_ids=("mx.example.com",)).flags == flags
    assert sort(headers=headers).flags == ()  # no trusted server configured: no header is read


@pytest.mark.parametrize(("text", "language"), [
    ("Please delete my data.", "en"),
    ("個人情報を削除してください。", "ja"),
    ("個人情報開示請求", "ja"),  # kanji only, short: a Japanese subject
    ("ﾃﾞｰﾀ", "ja"),  # half-width kana: 3 characters, but all of the letters
    ("ﾃﾞｰﾀ 削除", "ja"),
    ("Hello, I am Taro 山田. Please delete my data.", "en"),  # 2 kanji in 30 letters
    ("Hi 様", "en"),  # a single character is not enough
    ("ＤＭ停止", "ja"),
    ("这是一封很长的中文邮件内容我们想了解更多关于您的公司的信息以及如何处理我们的个人数据谢谢", "en"),  # Chinese
    ("", "en"),
])
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_language_ignores_quoted_japanese() -> None:
    text = "Please delete my data.\n\n2026年1月5日 10:00 山田太郎 <taro@example.jp>:\n> 個人情報を削除してください。"
    assert sort(subject="Delete", text=text).language == "en"


@pytest.mark.parametrize(("subject", "ref"), [
    ("Re: [PRV-2026-00042] Your request", "PRV-2026-00042"),
    ("Re: prv-2026-00042", "PRV-2026-00042"),
    ("Ｒｅ：［ＰＲＶ－２０２６－０００４２］ご依頼", "PRV-2026-00042"),
    ("【PRV-2026-00042】個人情報", "PRV-2026-00042"),
    ("PRVー2026ー00042", "PRV-2026-00042"),  # katakana long-vowel mark typed for a dash
    ("XPRV-2026-00042", ""),
    ("PRV-26-00042", ""),
    ("No reference here", ""),
])
def test_find_ref(subject: str, ref: str) -> None:
    assert find_ref(subject, "PRV") == ref


def test_find_ref_other_prefix_and_classify_ref() -> None:
    assert find_ref("[dsr-2027-00001] hi", "DSR") == "DSR-2027-00001"
    assert find_ref("[PRV-2027-00001] hi", "DSR") == ""
    assert sort(subject="Re: [prv-2026-00007] data").ref == "PRV-2026-00007"


# --- helpers -----------------------------------------------------------------------------

def test_normalise_and_match_text() -> None:
    assert normalise("ＤＭ ﾃﾞｰﾀ Don’t") == "dm データ don't"
    assert match_text("Delete   my\r\n data\n個人情報を削\n除") == "delete my data 個人情報を削除"


@pytest.mark.parametrize(("text", "kept"), [
    ("Hi\n> quoted\n＞ 引用\nBye", "Hi\nBye"),
    ("Mine\nOn Mon, 5 Jan 2026 at 10:00, Privacy Office <privacy@example.com>\nwrote:\nold", "Mine"),
    ("Mine\nPrivacy Office <privacy@example.com> wrote:\nold", "Mine"),
    ("了解です\n山田太郎さんは書きました:\n古い", "了解です"),
    ("Mine\n-----Original Message-----\nold", "Mine"),
    ("はい\n-----元のメッセージ-----\n古い", "はい"),
    ("Mine\n________________________________\nFrom: Privacy\nSent: Monday\nold", "Mine"),
    ("本文\n\n差出人: Privacy\n送信日時: 2026年1月5日\n件名: hi\n古い", "本文"),
    ("Mine\n-- \nRuth Adams\nACME", "Mine"),
    ("Mine\n\nSent from my iPhone", "Mine"),
    ("本文です。\n-----\n株式会社例 山田\n〒105-0011 東京都港区\nTEL 03-1234-5678", "本文です。"),
    # a separator followed by sentences is not a signature
    ("前置き\n-----\n個人情報を削除してください。\n山田\nTEL 03-1234-5678",
     "前置き\n-----\n個人情報を削除してください。\n山田\nTEL 03-1234-5678"),
    ("From: is a word here\nand this is text", "From: is a word here\nand this is text"),
])
def test_strip_quoted(text: str, kept: str) -> None:
    assert strip_quoted(text) == kept


# --- rule file ---------------------------------------------------------------------------

def _data() -> dict[str, Any]:
    with default_rules_path().open("rb") as fh:
        return tomllib.load(fh)


def test_shipped_rules_load() -> None:
    ids = [r.id for r in RULES.kind_rules]
    assert len(ids) == len(set(ids)) == 19
    assert {r.kind for r in RULES.kind_rules} == set(Kind)
    assert RULES.source == str(default_rules_path())


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["rule"][0].update(patterns=["(unclosed"]),
     "rule disclosure.en.access_request patterns[1]: bad regular expression '(unclosed'"),
    (lambda d: d["rule"][2].update(kind="gossip"), "rule disclosure.ja.kaiji: unknown kind 'gossip'"),
    (lambda d: d["rule"][1].pop("patterns"), "rule disclosure.en.copy_of_data: key patterns is missing"),
    (lambda d: d["rule"][1].update(patterns=[]), "rule disclosure.en.copy_of_data: key patterns must not be empty"),
    (lambda d: d["rule"][1].update(paterns=["x"]), "rule disclosure.en.copy_of_data: unknown key(s) paterns"),
    (lambda d: d["rule"][3].update(id="disclosure.en.access_request"),
     "rule disclosure.en.access_request: id is used twice"),
    (lambda d: d["rule"][0].update(patterns=["(?:x)?"]), "matches empty text"),
    (lambda d: d["rule"][0].update(patterns=["ＤＭ停止"]), "never occur in normalised text"),
    (lambda d: d["rule"][0].update(patterns=["{{nosuch}}"]), "unknown define {{nosuch}}"),
    (lambda d: d["bounce"].update(subjects=["[bad"]), "[bounce] subjects[1]: bad regular expression '[bad'"),
    (lambda d: d["auto_reply"]["headers"][0].update(pattern="(?<"),
     "rule auto_reply.auto_submitted: bad regular expression"),
    (lambda d: d["bulk"]["headers"][0].pop("header"), "rule bulk.list_id: key header must be a header name"),
    (lambda d: d.pop("address"), "[address]: section is missing"),
    (lambda d: d.update(version=2), "key version: must be 1"),
])
def test_rule_file_errors_name_the_rule(change: Any, message: str) -> None:
    data = _data()
    change(data)
    with pytest.raises(ConfigError) as err:
        rules_from_data(data, source="config/rules.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("rule file config/rules.toml: ")


def test_load_rules_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"rule file .*missing\.toml not found"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("version = \n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rule file .*bad\.toml is not valid TOML"):
        load_rules(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text(default_rules_path().read_text(encoding="utf-8").replace(
        'kind = "deletion"', 'kind = "deleted"', 1), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.toml: rule deletion\.en\.delete_my_data: unknown kind 'deleted'"):
        load_rules(broken)


def test_classify_never_raises_on_odd_values() -> None:
    odd = mail(subject="\x00" * 5 + "x" * 5000, text="\ud800 broken surrogate " * 1000, from_addr="a@b@c",
               headers=(("to", "a" * 100_000), ("auto-submitted", "")), content_type="")
    result = classify(odd, RULES, own_addresses=OWN)
    assert (result.suppress, result.kinds, result.language) == (Suppress.INVALID_ADDRESS, (), "en")


# --- issue 10: who an answer goes to (SPEC section 9) -------------------------------------------------

MX = ("mx.example.com",)
FORM = {"from_addr": "noreply@forms.example.com", "reply_to": "ken@example.jp"}


@pytest.mark.parametrize(("headers", "trusted", "recipient", "authenticated", "dmarc_fail"), [
    ((), MX, "noreply@forms.example.com", False, False),
    ((("authentication-results", "mx.example.com; dkim=pass header.d=forms.example.com"),), MX,
     "ken@example.jp", True, False),
    ((("authentication-results", "mx.example.com; dmarc=pass (p=reject) header.from=forms.example.com"),), MX,
     "ken@example.jp", True, False),
    ((("authentication-results", "mx.example.com; spf=pass smtp.mailfrom=bounce@mail.forms.example.com"),), MX,
     "ken@example.jp", True, False),
    # the sender wrote it: not from a trusted server, or no server is trusted at all
    ((("authentication-results", "evil.example; dmarc=pass header.from=forms.example.com"),), MX,
     "noreply@forms.example.com", False, False),
    ((("authentication-results", "mx.example.com; dmarc=pass header.from=forms.example.com"),), (),
     "noreply@forms.example.com", False, False),
    # below a header from another server, a "trusted" one may be forged
    ((("authentication-results", "relay.example; none"),
      ("authentication-results", "mx.example.com; dmarc=pass header.from=forms.example.com")), MX,
     "noreply@forms.example.com", False, False),
    # dkim for another domain is not the sender's
    ((("authentication-results", "mx.example.com; dkim=pass header.d=evil.example"),), MX,
     "noreply@forms.example.com", False, False),
    ((("authentication-results", "mx.example.com; dmarc=fail header.from=forms.example.com"),), MX,
     "noreply@forms.example.com", False, True),
    ((("authentication-results", "MX.Example.COM; dkim=pass header.d=forms.example.com; dmarc=fail"),), MX,
     "noreply@forms.example.com", False, True),
    # an untrusted dmarc=fail means nothing either way
    ((("authentication-results", "evil.example; dmarc=fail"),), MX, "noreply@forms.example.com", False, False),
])
def test_reply_to_only_for_a_sender_a_trusted_server_authenticated(headers, trusted, recipient, authenticated,
                                                                    dmarc_fail) -> None:
    result = classify(mail(headers=headers, **FORM), RULES, own_addresses=OWN, trusted_authserv_ids=trusted)
    assert (result.recipient, result.authenticated) == (recipient, authenticated)
    assert (Flag.DMARC_FAIL in result.flags) is dmarc_fail


def test_the_sorter_fails_closed() -> None:
    """From: with 1,200 nested "(" and Reply-To: root@localhost: whatever raises inside, the result
    is an error that is never answered (never "no suppression")."""
    nested = mail(from_addr="", reply_to="root@localhost",
                  headers=(("from", "(" * 1200 + "x@example.com"), ("reply-to", "root@localhost")))
    result = classify(nested, RULES, own_addresses=OWN)
    assert result.error and Flag.CLASSIFIER_ERROR in result.flags and result.recipient == ""
