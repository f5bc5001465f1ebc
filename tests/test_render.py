"""Reply templates: content of every real template, the filters, strictness and `check_all`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.compose.templates import (
    REQUIRED_TEMPLATES,
    Renderer,
    ReplyContext,
    check_all,
    form_filename,
    format_date,
    kind_label,
    one_line,
    response_period,
    sample_context,
    template_names,
)
from bot.core.errors import TemplateProblem
from bot.core.model import Kind

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
REF = "PRV-2026-00042"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES)


def ctx(lang: str, /, **changes: Any) -> ReplyContext:
    return replace(sample_context(lang), **changes)


def write(directory: Path, files: dict[str, str]) -> Renderer:
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return Renderer(directory)


# --- every real template -------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("name", REQUIRED_TEMPLATES)
def test_every_template_renders_with_ref_in_subject(renderer: Renderer, name: str, language: str) -> None:
    out = renderer.render(name, language, sample_context(language))
    assert out.subject.startswith(f"[{REF}] ")
    assert "\n" not in out.subject and "\r" not in out.subject
    assert REF in out.text
    assert out.text.endswith("\n") and not out.text.endswith("\n\n")
    assert "privacy@example.co.jp" in out.text  # footer


def test_ack_rights_ja_explains_the_policy_steps(renderer: Renderer) -> None:
    out = renderer.render("ack_rights", "ja", sample_context("ja"))
    assert out.subject == f"[{REF}] 個人情報の開示等のご請求について"
    text = out.text
    assert text.startswith("山田 花子 様\n")
    assert "お問い合わせいただき" in text and "誠にありがとうございます。" in text
    assert "2026年12月18日" in text
    assert "　・保有個人データの開示\n　・保有個人データの削除\n" in text
    assert "保有個人データの訂正" not in text
    assert "運転免許証の写し" in text and "住民票の写し" in text
    assert "東京都千代田区丸の内1-2-3 サンプルビル5階" in text and "〒100-0005" in text
    assert "手数料、コピー代および郵送料" in text and "ご負担" in text
    assert "2週間程度で書面にてご回答いたします" in text
    assert "お名前とご住所" in text and f"「[{REF}]」" in text
    assert f"{REF}-request-form.pdf" in text and "添付いたしました" in text
    assert "販促のご案内の停止のご依頼も承り" in text  # the sample also has marketing_opt_out


def test_ack_rights_en_explains_the_policy_steps(renderer: Renderer) -> None:
    out = renderer.render("ack_rights", "en", sample_context("en"))
    text = out.text
    assert text.startswith("Dear Ruth Adams,\n")
    assert "18 December 2026" in text
    assert "  - disclosure of your personal information\n  - deletion of your personal information\n" in text
    assert "driver's licence" in text and "residence certificate" in text
    assert "5F Sample Building, 1-2-3 Marunouchi" in text
    assert "copying" in text and "postage" in text and "borne by you" in text
    assert "in writing in about two weeks" in text
    assert "name and postal address" in text and f'"[{REF}]"' in text
    assert "stop sending you marketing messages" in text


def test_ack_rights_without_opt_out_or_form(renderer: Renderer) -> None:
    c = ctx("ja", kinds=(Kind.THIRD_PARTY_STOP,), form_attached=False, response_days=10)
    text = renderer.render("ack_rights", "ja", c).text
    assert "保有個人データの第三者への提供の停止" in text
    assert "販促" not in text
    assert "添付いたしました" not in text and "request-form.pdf" not in text
    assert "10日程度" in text
    en = renderer.render("ack_rights", "en", ctx("en", kinds=(Kind.AMENDMENT,), form_attached=False)).text
    assert "amendment (correction)" in en and "marketing" not in en and "attached" not in en


def test_ack_rights_without_name_greets_politely(renderer: Renderer) -> None:
    assert renderer.render("ack_rights", "ja", ctx("ja", requester_name="")).text.startswith("お客様\n")
    assert renderer.render("ack_rights", "en", ctx("en", requester_name="")).text.startswith("Dear Customer,\n")


def test_ack_opt_out_needs_no_form(renderer: Renderer) -> None:
    c = ctx("ja", kinds=(Kind.MARKETING_OPT_OUT,), form_attached=False)
    ja = renderer.render("ack_opt_out", "ja", c)
    assert ja.subject == f"[{REF}] 販促のご案内の停止について"
    assert "承り、記録いたしました" in ja.text and "不要" in ja.text
    assert "運転免許証" not in ja.text
    en = renderer.render("ack_opt_out", "en", ctx("en", kinds=(Kind.MARKETING_OPT_OUT,)))
    assert "We have recorded your request and will carry it out" in en.text
    assert "No form" in en.text


def test_ack_general_hands_to_staff(renderer: Renderer) -> None:
    ja = renderer.render("ack_general", "ja", ctx("ja", kinds=(Kind.GENERAL,)))
    assert "担当者に引き継ぎました" in ja.text and "件名　　：個人情報の開示と削除のお願い" in ja.text
    en = renderer.render("ack_general", "en", ctx("en", kinds=()))
    assert "passed your message to a member of our staff" in en.text


def test_reminder_documents(renderer: Renderer) -> None:
    ja = renderer.render("reminder_documents", "ja", sample_context("ja"))
    assert "到着を" in ja.text and "確認できておりません" in ja.text
    assert "再度添付" in ja.text and "運転免許証の写し" in ja.text
    en = renderer.render("reminder_documents", "en", ctx("en", form_attached=False))
    assert "we have not yet received" in en.text and "attached" not in en.text


def test_unknown_language_falls_back_to_english(renderer: Renderer) -> None:
    out = renderer.render("ack_general", "fr", ctx("en", language="fr"))
    assert out.subject == f"[{REF}] We have received your message"
    assert "Dear Ruth Adams," in out.text


def test_dates_are_shown_in_the_configured_zone(renderer: Renderer) -> None:
    # 23:30 UTC on the 17th is already the 18th in Tokyo.
    c = ctx("ja", opened_at=datetime(2026, 12, 17, 23, 30, tzinfo=UTC))
    assert "2026年12月18日にいただいた" in renderer.render("ack_general", "ja", c).text
    c = replace(c, timezone="UTC")
    assert "2026年12月17日にいただいた" in renderer.render("ack_general", "ja", c).text


# --- customer text is data ----------------------------------------------------------------------


def test_customer_text_is_never_evaluated(renderer: Renderer) -> None:
    c = ctx("en", inquiry_subject="{{ 7*7 }} {% if true %}x{% endif %}", requester_name="{{ ref }}")
    out = renderer.render("ack_rights", "en", c)
    assert '"{{ 7*7 }} {% if true %}x{% endif %}"' in out.text
    assert "Dear {{ ref }}," in out.text
    assert "49" not in out.text
    ja = renderer.render("ack_general", "ja", ctx("ja", inquiry_subject="{{ 7*7 }}"))
    assert "件名　　：{{ 7*7 }}" in ja.text


def test_customer_line_breaks_are_flattened(renderer: Renderer) -> None:
    c = ctx("en", inquiry_subject="hello\r\nBcc: evil@example.com", requester_name="Eve\nMallory\u2028X")
    text = renderer.render("ack_general", "en", c).text
    assert '"hello Bcc: evil@example.com"' in text
    assert "Dear Eve Mallory X," in text


def test_long_customer_subject_is_cut() -> None:
    assert one_line("a" * 500, 120) == "a" * 119 + "…"
    assert one_line(" a\t\tb\x00c ") == "a b c"


# --- filters and helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        (date(2026, 12, 18), "ja", "2026年12月18日"),
        (date(2026, 12, 18), "en", "18 December 2026"),
        (date(2027, 1, 5), "ja", "2027年1月5日"),
        (date(2027, 1, 5), "fr", "5 January 2027"),
        (datetime(2026, 12, 17, 23, 30, tzinfo=UTC), "ja", "2026年12月18日"),
    ],
)
def test_format_date(value: date, language: str, expected: str) -> None:
    assert format_date(value, language, "Asia/Tokyo") == expected


def test_jdate_and_date_filters(tmp_path: Path) -> None:
    r = write(tmp_path, {
        "d.en.txt.j2": "Subject: [{{ ref }}] d\n\n{{ opened_at|jdate }} / {{ opened_at|date }} / {{ opened_at|date('ja') }}\n",
    })
    text = r.render("d", "en", sample_context("en")).text
    assert text == "2026年12月18日 / 18 December 2026 / 2026年12月18日\n"


@pytest.mark.parametrize(
    ("days", "language", "expected"),
    [(14, "en", "two weeks"), (14, "ja", "2週間"), (7, "en", "one week"), (10, "en", "10 days"), (10, "ja", "10日")],
)
def test_response_period(days: int, language: str, expected: str) -> None:
    assert response_period(days, language) == expected


def test_kind_labels() -> None:
    assert kind_label(Kind.DISCLOSURE, "ja") == "保有個人データの開示"
    assert kind_label("third_party_stop", "en") == "stopping the supply of your personal information to third parties"
    assert all(kind_label(k, lang) for k in Kind for lang in ("ja", "en", "xx"))


def test_form_filename() -> None:
    assert form_filename(REF) == "PRV-2026-00042-request-form.pdf"
    assert form_filename("../x y") == "x-y-request-form.pdf"


# --- strictness and errors ----------------------------------------------------------------------


def test_strict_undefined_names_the_file_and_variable(tmp_path: Path) -> None:
    r = write(tmp_path, {"x.en.txt.j2": "Subject: [{{ ref }}] hi\n\nHello {{ no_such_variable }}\n"})
    with pytest.raises(TemplateProblem, match=r"x\.en\.txt\.j2.*no_such_variable"):
        r.render("x", "en", sample_context("en"))


def test_missing_template_names_the_file(renderer: Renderer) -> None:
    with pytest.raises(TemplateProblem, match=r"no_such\.ja\.txt\.j2 not found"):
        renderer.render("no_such", "ja", sample_context("ja"))


def test_missing_include_is_reported(tmp_path: Path) -> None:
    r = write(tmp_path, {"x.en.txt.j2": 'Subject: [{{ ref }}] x\n\n{% include "_gone.en.txt.j2" %}\n'})
    with pytest.raises(TemplateProblem, match=r"x\.en\.txt\.j2: included template _gone\.en\.txt\.j2 not found"):
        r.render("x", "en", sample_context("en"))


@pytest.mark.parametrize("name", ["../etc/passwd", "Ack", "", "ack rights"])
def test_bad_template_names_are_refused(renderer: Renderer, name: str) -> None:
    with pytest.raises(TemplateProblem, match="bad template name"):
        renderer.render(name, "en", sample_context("en"))


def test_subject_line_is_required(tmp_path: Path) -> None:
    r = write(tmp_path, {"x.en.txt.j2": "Hello\n\nbody\n"})
    with pytest.raises(TemplateProblem, match=r"x\.en\.txt\.j2: the first line must be 'Subject: \.\.\.'"):
        r.render("x", "en", sample_context("en"))


def test_subject_is_one_line_and_keeps_the_ref(tmp_path: Path) -> None:
    r = write(tmp_path, {"x.en.txt.j2": "Subject: About {{ inquiry_subject }}\n\nbody\n"})
    out = r.render("x", "en", ctx("en", inquiry_subject="a\r\nBcc: evil@example.com"))
    assert out.subject == f"[{REF}] About a Bcc: evil@example.com"
    assert out.text == "body\n"


def test_html_templates_are_autoescaped_and_text_is_not(tmp_path: Path) -> None:
    r = write(tmp_path, {
        "x.en.txt.j2": "Subject: [{{ ref }}] x\n\n{{ inquiry_subject }}\n",
        "x.en.html.j2": "<p>{{ inquiry_subject }}</p>\n",
    })
    out = r.render("x", "en", ctx("en", inquiry_subject="<b>&</b>"))
    assert out.text == "<b>&</b>\n"
    assert out.html == "<p>&lt;b&gt;&amp;&lt;/b&gt;</p>\n"


def test_missing_directory() -> None:
    with pytest.raises(TemplateProblem, match=r"templates directory .* not found"):
        Renderer("/nonexistent/templates")


# --- check_all ----------------------------------------------------------------------------------


def test_check_all_on_the_real_templates_is_clean(renderer: Renderer) -> None:
    assert check_all(renderer) == []
    assert set(REQUIRED_TEMPLATES) <= set(template_names(renderer))
    assert not any(name.startswith("_") for name in template_names(renderer))


def test_check_all_reports_a_syntax_error_with_the_file(tmp_path: Path) -> None:
    r = write(tmp_path, {
        "good.en.txt.j2": "Subject: [{{ ref }}] ok\n\nfine\n",
        "good.ja.txt.j2": "Subject: [{{ ref }}] 了解\n\nはい\n",
        "bad.en.txt.j2": "Subject: [{{ ref }}] x\n\n{% if %}\n",
        "bad.ja.txt.j2": "Subject: [{{ ref }}] x\n\n{{ ok }}\n",
    })
    problems = check_all(r, required=())
    assert any("bad.en.txt.j2" in p and "syntax error" in p for p in problems), problems
    assert any("bad.ja.txt.j2" in p and "'ok' is undefined" in p for p in problems), problems
    assert not any("good." in p for p in problems)


def test_check_all_reports_a_language_missing(tmp_path: Path) -> None:
    r = write(tmp_path, {"only_en.en.txt.j2": "Subject: [{{ ref }}] x\n\nbody\n"})
    problems = check_all(r, required=())
    assert problems == [f"template {tmp_path / 'only_en.ja.txt.j2'} is missing (present: only_en.en.txt.j2)"]


def test_check_all_reports_required_templates_and_subject_without_ref(tmp_path: Path) -> None:
    r = write(tmp_path, {
        "ack_general.en.txt.j2": "Subject: [{{ language }}] x\n\nbody\n",
        "ack_general.ja.txt.j2": "Subject: [{{ ref }}] x\n\nbody\n",
        "_footer.en.txt.j2": "{% for %}",
    })
    problems = check_all(r)
    for name in ("ack_rights", "ack_opt_out", "reminder_documents"):
        assert any(p.startswith(f"template {name} is missing") for p in problems), problems
    assert not any("ack_general is missing" in p for p in problems)
    assert any("_footer.en.txt.j2" in p and "syntax error" in p for p in problems)
    assert any("ack_general.en.txt.j2" in p and "must start with" in p for p in problems)


def test_check_all_reports_unused_language(tmp_path: Path) -> None:
    r = write(tmp_path, {
        "x.en.txt.j2": "Subject: [{{ ref }}] x\n\nbody\n",
        "x.ja.txt.j2": "Subject: [{{ ref }}] x\n\nbody\n",
        "x.fr.txt.j2": "Subject: [{{ ref }}] x\n\nbody\n",
    })
    assert check_all(r, required=()) == [
        f"template {tmp_path / 'x.fr.txt.j2'}: language 'fr' is never used (languages: ja, en)"
    ]


def test_render_restores_a_lost_ref(tmp_path: Path) -> None:
    r = write(tmp_path, {"x.en.txt.j2": "Subject: Hello\n\nbody\n"})
    assert r.render("x", "en", sample_context("en")).subject == f"[{REF}] Hello"
    assert r.render_as_written("x", "en", sample_context("en")).subject == "Hello"
