"""The console's words: English is the key (the names tests and screen readers rely on, SPEC section 6),
Japanese the translation. `[web] language` picks the default; `?lang=en` on any page switches."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("ja", "en")

JA: Mapping[str, str] = {
    # frame
    "Privacy console": "個人情報窓口コンソール", "Main": "メイン", "Queue": "対応キュー", "Cases": "案件一覧",
    "Quarantine": "隔離メール", "Templates": "テンプレート", "Sign in": "サインイン", "Sign out": "サインアウト",
    "Username": "ユーザー名", "Password": "パスワード", "Times in": "時刻の表示：", "Back to the queue": "対応キューへ戻る",
    "viewer": "閲覧者", "staff": "担当者", "admin": "管理者",
    "Wrong username or password.": "ユーザー名またはパスワードが違います。",
    "Too many failed sign-ins: this account must wait {n} minutes before it can sign in again.":
        "サインインの失敗が続いたため、このアカウントはあと{n}分間サインインできません。",
    "The form has expired or did not come from this console: nothing was changed. Reload the page and try again.":
        "フォームの有効期限が切れたか、このコンソール以外から送信されました。何も変更していません。ページを再読み込みしてやり直してください。",
    "Your role does not allow this: nothing was changed.": "この操作は権限がないため行えません。何も変更していません。",
    "There is no case with this reference.": "この受付番号の案件はありません。", "There is no such page.": "ページが見つかりません。",
    "The mailbox could not be reached to read the customer's mail: no evidence pack was made. Try again later.":
        "お客様のメールを読むためのメールボックスに接続できませんでした。証跡パッケージは作成していません。時間をおいて再度お試しください。",
    # queue and lists
    "Overdue": "期限超過", "Due within 3 days": "3日以内に回答期限", "Customers waiting for us": "お客様の返信に未対応",
    "Needs staff": "担当者の対応が必要", "Awaiting documents": "書類待ち", "Marketing opt-outs to carry out": "実施待ちのDM停止",
    "Reference": "受付番号", "Status": "状態", "Kinds": "種別", "Kind": "種別", "Requester": "請求者", "Opened": "受付",
    "Due": "期限", "Days overdue": "超過日数", "Days left": "残り日数", "Days waiting": "待ち日数", "Days open": "経過日数",
    "All {n}": "すべて表示（{n}件）", "None": "なし", "customer waiting": "お客様返信あり", "since": "",
    "Any": "すべて", "Overdue only": "期限超過のみ", "Reference or address": "受付番号またはアドレス", "Search": "検索",
    "Previous": "前へ", "Next": "次へ", "Page {p} of {n}": "{p} / {n} ページ", "Pages": "ページ",
    # statuses, kinds, flags
    "awaiting_documents": "書類待ち", "in_progress": "対応中", "responded": "回答済み", "closed": "完了",
    "needs_staff": "要対応", "disclosure": "開示", "amendment": "訂正", "addition": "追加", "deletion": "削除",
    "third_party_stop": "第三者提供の停止", "marketing_opt_out": "DM停止", "general": "一般",
    "dmarc_fail": "DMARC不合格", "other_sender": "別の差出人", "classifier_error": "分類エラー",
    "mentions_other_case": "他の案件に言及", "limit_reached": "自動返信の上限", "recipient_refused": "返信先が不適切",
    # case page
    "Case": "案件", "Subject": "件名", "Language": "言語", "Documents received": "書類受領日", "Due date": "回答期限",
    "Responded": "回答日", "Closed": "完了日", "Identity": "本人確認", "Outcome": "結果", "Flags": "注意",
    "overdue": "期限超過", "verified": "確認済み", "insufficient": "書類不備", "Export evidence": "証跡をエクスポート",
    "Actions": "操作", "Mark handled": "対応済みにする",
    "The customer wrote and is waiting for us. Reply below, or mark the message handled when nothing needs saying.":
        "お客様から返信があり、対応を待っています。下のフォームから返信するか、返信不要なら対応済みにしてください。",
    "Record documents received": "書類の受領を記録", "Date received": "受領日", "Document": "本人確認書類",
    "Identity verified": "本人確認済み", "What is missing": "不足している内容", "Documents insufficient": "書類不備",
    "Mailed to the customer from this case; the response clock waits for new documents.":
        "この案件からお客様へメールで送ります。新しい書類が届くまで回答期限は止まります。",
    "Extend": "期限を延長", "Days": "日数", "Reason": "理由", "Set kinds": "種別を設定", "Record outcome": "結果を記録",
    "Reason given to the customer": "お客様に伝えた理由", "Mark responded": "回答済みにする", "Date sent": "発送日",
    "Close case": "案件を完了", "Message": "本文", "Send reply": "返信を送信",
    "Sent to {to} from the privacy address, with [{ref}] in the subject, as an answer to the customer's latest mail.":
        "窓口のアドレスから {to} へ、件名に [{ref}] を付け、お客様の最新のメールへの返信として送ります。",
    "Messages": "メール", "The mailbox could not be read; customer mail is not shown.":
        "メールボックスを読めなかったため、お客様のメールは表示していません。",
    "From the customer": "お客様から", "Sent by us": "当方から送信", "Download .eml": ".emlをダウンロード", "From": "差出人",
    "To": "宛先", "History": "履歴", "When": "日時", "Who": "実施者", "What": "内容", "Detail": "詳細",
    "no longer in the mailbox": "メールボックスにありません", "not kept (erased)": "保存されていません（消去済み）",
    "Reply queued; it is being sent.": "返信を送信待ちに入れました。まもなく送信されます。", "Done.": "完了しました。",
    "Give a date.": "日付を入力してください。", "Days must be a whole number.": "日数は整数で入力してください。",
    "Choose an outcome.": "結果を選んでください。",
    "done": "対応済み", "partly_done": "一部対応", "refused": "不開示・対応不可", "no_data": "該当データなし",
    "Driver's licence": "運転免許証", "My Number card": "マイナンバーカード", "Passport": "パスポート",
    "Residence card": "在留カード", "Health insurance card": "健康保険証", "Residence certificate": "住民票", "Other": "その他",
    "pending": "送信待ち", "claimed": "送信中", "committing": "送信中", "sent": "送信済み", "failed": "送信失敗",
    "uncertain": "送信不明",
    # history lines
    "opened": "受付", "flagged": "注意", "reply_queued": "返信", "reply_withheld": "返信保留", "reminder_queued": "督促",
    "customer_message": "お客様からのメール", "staff_alerted": "担当者へ通知", "documents_received": "書類受領",
    "extended": "期限延長", "closed_event": "完了", "abandoned": "放棄", "kinds_set": "種別設定", "send_failed": "送信失敗",
    "send_uncertain": "送信不明", "purged": "消去", "identity_verified": "本人確認済み",
    "documents_insufficient": "書類不備", "outcome_recorded": "結果記録", "handled": "対応済み",
    # admin pages
    "Mail the bot could not read. It stays unread in the mailbox; open it there.":
        "ボットが読めなかったメールです。メールボックスに未読のまま残っています。メールソフトで確認してください。",
    "Recorded": "記録日時", "Size": "サイズ", "Every message the bot sends, rendered with sample data.":
        "ボットが送るすべてのメールを、サンプルデータで表示しています。", "Also sent as HTML.": "HTML版も送信されます。",
}


# codes (statuses, kinds, history lines...) in plain English words
EN: Mapping[str, str] = {
    "awaiting_documents": "Awaiting documents", "in_progress": "In progress", "responded": "Responded",
    "closed": "Closed", "needs_staff": "Needs staff", "third_party_stop": "third-party stop",
    "marketing_opt_out": "marketing opt-out", "dmarc_fail": "DMARC fail", "other_sender": "other sender",
    "classifier_error": "sorter error", "mentions_other_case": "mentions another case",
    "limit_reached": "automatic mail limit reached", "recipient_refused": "reply address refused",
    "partly_done": "partly done", "no_data": "no data held",
    "reply_queued": "reply queued", "reply_withheld": "reply withheld", "reminder_queued": "reminder queued",
    "customer_message": "customer's message", "staff_alerted": "staff alerted", "documents_received": "documents received",
    "kinds_set": "kinds set", "send_failed": "send failed", "send_uncertain": "send uncertain",
    "identity_verified": "identity verified", "documents_insufficient": "documents insufficient",
    "outcome_recorded": "outcome recorded",
}


def translate(text: str, language: str) -> str:
    if language == "ja":
        return JA.get(text, text)
    return EN.get(text, text)
