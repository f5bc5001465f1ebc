"""The request form's words in Japanese and English (laid out by `bot.compose.form_pdf`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from bot.core.model import Kind
from bot.core.wording import format_date, response_period


@dataclass(frozen=True)
class FormWords:
    title: str
    ref_label: str
    to: str
    date_label: str
    intro: str
    kinds_head: str
    kinds_note: str
    kind_labels: dict[Kind, str]
    detail_head: str
    detail_hint: str
    person_head: str
    furigana: str
    name: str
    signature: str
    seal: str
    address: str
    address_prefix: str
    phone: str
    email: str
    enclosures_head: str
    enclosures: tuple[tuple[int, str], ...]  # (indent level, text)
    send_head: str
    notes_head: str
    notes: tuple[str, ...]
    opened: str
    footer_ref: str


def form_words(language: str, company_name: str, response_days: int, opened_on: date) -> FormWords:
    if language == "ja":
        period = response_period(response_days, "ja")
        return FormWords(
            title="保有個人データ開示等請求書",
            ref_label="受付番号",
            to=f"{company_name}　御中",
            date_label="請求日　　　　　年　　　月　　　日",
            intro="個人情報の保護に関する法律に基づき、貴社が保有する私の個人データについて、下記のとおり請求します。",
            kinds_head="1. ご請求の内容（該当するものにチェックを付けてください）",
            kinds_note="※お問い合わせのメールの内容から当窓口で判断した項目にチェックを付けています。"
            "異なる場合は訂正してください。",
            kind_labels={
                Kind.DISCLOSURE: "開示",
                Kind.AMENDMENT: "訂正",
                Kind.ADDITION: "追加",
                Kind.DELETION: "削除",
                Kind.THIRD_PARTY_STOP: "第三者への提供の停止",
            },
            detail_head="2. ご請求の詳細",
            detail_hint="対象となる個人データ、訂正・追加していただきたい内容、ご請求の理由などをご記入ください。",
            person_head="3. ご請求者（ご本人）",
            furigana="フリガナ",
            name="氏名",
            signature="署名・押印",
            seal="印",
            address="住所",
            address_prefix="〒　　　　－",
            phone="電話番号",
            email="メールアドレス",
            enclosures_head="4. 同封書類（同封したものにチェックを付けてください）",
            enclosures=(
                (0, "本請求書（ご記入のうえ、署名または押印したもの）"),
                (0, "本人確認書類の写し（次のいずれか1点）"),
                (1, "運転免許証の写し"),
                (1, "住民票の写し"),
                (1, "その他の本人確認書類の写し（書類名：　　　　　　　　　　　　　　　）"),
            ),
            send_head="5. 送付先（本請求書と同封書類をこちらへご郵送ください）",
            notes_head="ご注意",
            notes=(
                "本人確認書類の取得にかかる手数料、コピー代および郵送料は、ご請求者のご負担となります。",
                f"書類の到着後、{period}程度で書面にてご回答いたします。",
                "ご記入内容に不備がある場合は、確認のためご連絡することがあります。",
            ),
            opened=f"お問い合わせ受付日：{format_date(opened_on, 'ja')}",
            footer_ref="受付番号",
        )
    period = response_period(response_days, "en")
    return FormWords(
        title="Request form: disclosure, amendment, addition, deletion, suspension of supply to third parties",
        ref_label="Case reference",
        to=f"To: {company_name}",
        date_label="Date:  ______ / ______ / __________",
        intro="Under the Act on the Protection of Personal Information of Japan, I make the following request "
        "concerning the personal information about me that you hold.",
        kinds_head="1. What you request (tick all that apply)",
        kinds_note="We have ticked what we understood from your e-mail; please correct it if needed.",
        kind_labels={
            Kind.DISCLOSURE: "Disclosure",
            Kind.AMENDMENT: "Amendment",
            Kind.ADDITION: "Addition",
            Kind.DELETION: "Deletion",
            Kind.THIRD_PARTY_STOP: "Stop supply to third parties",
        },
        detail_head="2. Details of the request",
        detail_hint="Which information, what should be amended or added, and why.",
        person_head="3. Requester (the person the information is about)",
        furigana="",
        name="Full name",
        signature="Signature",
        seal="",
        address="Postal address",
        address_prefix="",
        phone="Telephone",
        email="E-mail address",
        enclosures_head="4. Enclosures (tick what you enclose)",
        enclosures=(
            (0, "This form, filled in and signed"),
            (0, "A copy of one document that verifies your identity:"),
            (1, "Copy of your driver's licence"),
            (1, "Copy of your residence certificate"),
            (1, "Copy of another identity document (which: ___________________________ )"),
        ),
        send_head="5. Send this form and the enclosures by post to",
        notes_head="Please note",
        notes=(
            "Fees for obtaining the identity document, copying and postage are borne by the requester.",
            f"We will answer in writing in about {period} after your documents arrive.",
            "If something is missing or unclear, we may contact you to check.",
        ),
        opened=f"Inquiry received: {format_date(opened_on, 'en')}",
        footer_ref="Case reference",
    )
