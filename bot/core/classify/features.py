"""What the sorter's model reads in a mail: the same function at training and at run time.

From `match_text` output (NFKC, lower case, one space): English words, word pairs and the
character 3- to 5-grams inside words (typos), Japanese character 2- and 3-grams (no word
segmentation needed), each marked `~` when it stands in a negated clause (see `negation`); and
which kinds the rule file found (`R:kind`, or `R~:kind` when every hit was negated); and the
character 2- to 5-grams of the whole text, across word boundaries (`C:`), which carry phrasing that
no word list names ("take me off", "ﾒﾙﾏｶﾞ", typos) in both languages. Word and n-gram features are
binary and scaled to unit length; character n-grams count sublinearly (1 + ln n) and are scaled to
unit length as their own block; rule features are 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

from bot.core.classify.negation import EN_BOUNDARY, EN_CUE, JA_NEGATION, negated_at

FEATURES_VERSION = "features-3"
MAX_FEATURE_CHARS = 4_000  # the request is near the top; bounds the work

_JA = "\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3001\u3002"
_TOKEN = re.compile(rf"[a-z0-9']+|[{_JA}]+|[.!?;:,()\n]")
_JA_CLAUSE = re.compile(r"[^。、]+")
_DIGITS = re.compile(r"[0-9]")
_EN_CUE_WORD = re.compile(rf"^(?:{EN_CUE.pattern})$")
_EN_BOUNDARY_WORD = re.compile(rf"^(?:{EN_BOUNDARY.pattern})$")


# Concepts: words that mean the same thing for the sorter, in English and Japanese. A concept found in a
# sentence is a feature (`K:DEL`, `K:~DEL` when negated), and so is each pair found in one sentence
# (`KK:DATA+DEL`): "stop" with "newsletter" is an opt-out, "stop" with "third party" a third-party stop.
_CONCEPTS: tuple[tuple[str, str], ...] = (
    ("DEL", r"\b(?:delet|eras|remov|wip(?:e|ing)|purg|destroy|get rid of|forget|scrub|close (?:my|the|our) \w*\s?account"
            r"|cancel (?:my|the|our) \w*\s?(?:account|membership)|deactivat|get rid)|削除|残さないで|消去|抹消|消して|消す|破棄|廃棄|退会|解約|取り除|抜いて"),
    ("SEE", r"\b(?:copy|copies|see|view|access|show me|tell me|let me know|know what|find out|hold (?:on|about)"
            r"|have (?:on|about) me|kept about|stored about|held about|where (?:did|do) you (?:get|obtain)|obtained|came from"
            r"|source|disclos(?:e|ure) (?:of )?(?:my|all|the|what)|what (?:personal )?(?:data|information|info|details)"
            r"|what you (?:\w+ )?(?:know|have|hold|keep|store)|whatever you|how you got|which compan|list of)"
            r"|開示|教えて|知りたい|確認したい|確認させて|見せて|写し|コピー|どのような情報|どんな情報|何の情報|保有して|持って|"
            r"入手|取得(?:元|した|され)|どこで|どこから|経緯|知っている|知った|しった|手に入れ"),
    ("FIX", r"\b(?:correct|fix|amend|updat|chang|rectif|wrong|incorrect|inaccurate|misspel|spelt|spelled|typo|outdated"
            r"|out of date|moved|new address|no longer live|married|mistake)|訂正|修正|変更|間違|誤(?:り|っ|字)|違って|違い|直して|"
            r"更新|古い|引っ?越|転居|変わ"),
    ("ADD", r"\b(?:add|adding|include|also (?:put|record|register|keep|store|note)|put .{0,20} (?:in|on|into) (?:my|the) (?:record|file|account|profile)"
            r"|second|another|additional|extra|alternative|missing|as well)|追加|加えて|追記|も登録|2つ目|二つ目|別の|新たに|も記録|併記"),
    ("THIRD", r"\b(?:third[ -]?part|3rd[ -]?part|affiliat|partner|group compan|related compan|sister compan|other compan"
              r"|outside compan|franchis|share|sharing|shared|pass(?:ing|ed)? (?:on|my|along)|sell|sold|selling|hand(?:ing|ed)? (?:over|my|on)"
              r"|transfer|provision|provid(?:e|ing) (?:my|it|them)|supply|suppl(?:y|ied|ying) (?:to|my)|give (?:my|out)"
              r"|anyone else|other (?:firms|businesses|companies))"
              r"|第三者|グループ会社|関連会社|関係会社|提携|他社|外部|パートナー|提供|渡さ|渡す|渡し|渡る|共有|譲渡|回さ|まわさ|回す|まわす|流さ|販売しない|売ら|横流し"),
    ("MKT", r"\b(?:marketing|newsletter|brochure|catalog|mailing|e-?mails|promotion|promotional|offer|advert|ads\b|spam|junk"
            r"|flyer|leaflet|dm\b|direct mail|sms|texts|calls|calling|call me|phon(?:e|ing) (?:me|calls)|ring(?:ing)? me|test drive"
            r"|sales|campaign|unsubscrib|opt[ -]?out|contact(?:ing)? me|leave (?:me|us) alone|bother|do[- ]not[- ]call|magazine|envelope)"
            r"|dm|ダイレクトメール|メルマガ|メールマガジン|広告|宣伝|カタログ|案内|勧誘|営業|電話|連絡|配信|郵送物|郵便物|チラシ|"
            r"キャンペーン|セール|ニュースレター|試乗|お電話|電話がかかって"),
    ("STOP", r"\b(?:stop|cease|no more|don't want|do not want|never|enough|no longer|quit|refrain|object|don't contact"
             r"|do not contact|withdraw|revoke|opt[ -]?out|don't consent|do not consent|not consent|without my consent"
             r"|prefer not|rather not|done with|don't need|no thanks|to yourselves)"
             r"|停止|やめ|止め|止まら|不要|ご?遠慮|(?<![a-z])ng(?![a-z])|なくていい|なくて結構|いりません|要りません|結構です|しないで|ないで|お断り|控え|二度と|一切|同意しません|同意していません|拒否|撤回"),
    ("DATA", r"\b(?:(?:my|our|his|her|their) (?:\w+ )?(?:data|information|info|details|records?|account|profile|name|address"
             r"|number|e-?mail|history)|personal (?:data|information|info|details)|about me|on me)"
             r"|個人情報|個人データ|情報|データ|登録|記録|履歴|住所|氏名|名前|電話番号|メールアドレス|アカウント|会員"),
    ("Q", r"\?|\b(?:how|why|when|is it|are you|can i|could you tell|what happens|question|wonder)\b|ですか|でしょうか|ますか|質問|"
          r"問い?合わ?せ|可能か|どうすれば|どのように|どうなり"),
    ("ASKER", r"\b(?:our customer|a customer|one of our customers|my customer|dealership|our dealer|our shop|our store"
              r"|on behalf of (?:a|our|the) (?:customer|client)|our client|our company|we are a|we offer|our (?:solution|software"
              r"|platform|product|service)s?|demo|webinar|partnership)|お客様から|お客様が|当店|弊社|当社のお客様|販売店です|ご提案|"
              r"ソリューション|サービスのご案内|デモ"),
    ("FAMILY", r"\b(?:my (?:late )?(?:mother|father|mum|mom|dad|wife|husband|son|daughter|parent|child|children|brother|sister)"
               r"|passed away|deceased|on behalf of my)|母|父|妻|夫|息子|娘|家族|亡くな|他界"),
    ("DONE", r"\b(?:have been|has been|was|were|had been|already) (?:\w+ )?(?:removed|deleted|erased|updated|corrected"
             r"|unsubscribed|changed|added|fixed)|confirm(?:ing|ed)? that|thank you for (?:fixing|removing|updating|confirming)"
             r"|していただき|してもらい|ありがとうございました|済み|されました|できました|確認できました"),
    ("HYPO", r"\b(?:if|would i|what happens|in case|suppose|whether)\b|仮に|もし|場合|としたら|したら|すると"),
    ("THANKS", r"\b(?:thank|thanks|received|got it|understood|noted|ok(?:ay)?\b)|ありがと|承知|了解|かしこまり|受け取り|届きました"),
)
_CONCEPT_RE = tuple((name, re.compile(pattern)) for name, pattern in _CONCEPTS)
_SENTENCE = re.compile(r"[^.!?;。!?\n]+[.!?;。!?]?")


def concept_features(text: str) -> dict[str, float]:
    """Concepts per sentence, and pairs of concepts in one sentence (see _CONCEPTS)."""
    out: dict[str, float] = {}
    text = text[:MAX_FEATURE_CHARS]
    for sentence in _SENTENCE.finditer(text):
        found = set()
        for name, pattern in _CONCEPT_RE:
            for match in pattern.finditer(text, sentence.start(), sentence.end()):
                found.add(("~" if negated_at(text, match.start(), match.end()) else "") + name)
                break
        for name in found:
            out[f"K:{name}"] = 1.0
        ordered = sorted(found)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                out[f"KK:{a}+{b}"] = 1.0
    return out


def rule_features(found: Iterable[str], negated: Iterable[str]) -> dict[str, float]:
    out = {f"R:{kind}": 1.0 for kind in found}
    out.update({f"R~:{kind}": 1.0 for kind in negated if f"R:{kind}" not in out})
    return out


def text_features(text: str) -> dict[str, float]:
    """Binary n-gram features of normalised text, scaled to unit length."""
    grams: set[str] = set()
    neg = False
    previous = ""
    for match in _TOKEN.finditer(text[:MAX_FEATURE_CHARS]):
        token = match.group()
        first = token[0]
        if first in ".!?;:,()\n":
            neg, previous = False, ""
            continue
        if "a" <= first <= "z" or "0" <= first <= "9" or first == "'":
            word = _DIGITS.sub("0", token.strip("'"))
            if not word:
                continue
            if _EN_BOUNDARY_WORD.match(word):
                neg = False
            mark = "~" if neg else ""
            grams.add(f"{mark}w:{word}")
            if previous:
                grams.add(f"{mark}b:{previous}_{word}")
            if len(word) >= 4:
                padded = f"<{word}>"
                for n in (3, 4, 5):
                    for i in range(len(padded) - n + 1):
                        grams.add("c:" + padded[i : i + n])
            previous = word
            if _EN_CUE_WORD.match(word):
                neg = True
            continue
        previous = ""
        for clause in _JA_CLAUSE.findall(token):
            mark = "~" if JA_NEGATION.search(clause) else ""
            clause = clause.replace("。", "")
            for n in (2, 3):
                for i in range(len(clause) - n + 1):
                    grams.add(f"{mark}j:{clause[i : i + n]}")
            if len(clause) == 1:
                grams.add(f"{mark}j:{clause}")
    if not grams:
        return {}
    scale = 1.0 / math.sqrt(len(grams))
    return dict.fromkeys(grams, scale)


def char_features(text: str) -> dict[str, float]:
    """Character 2- to 5-grams of the normalised text (spaces included), 1 + ln(count), unit length."""
    text = text[:MAX_FEATURE_CHARS]
    counts: dict[str, int] = {}
    for n in (2, 3, 4, 5):
        for i in range(len(text) - n + 1):
            gram = "C:" + text[i : i + n]
            counts[gram] = counts.get(gram, 0) + 1
    if not counts:
        return {}
    weights = {gram: 1.0 + math.log(c) for gram, c in counts.items()}
    scale = 1.0 / math.sqrt(sum(w * w for w in weights.values()))
    return {gram: w * scale for gram, w in weights.items()}


def features(text: str, found: Iterable[str] = (), negated: Iterable[str] = ()) -> dict[str, float]:
    """Everything the model reads: text features plus the rule file's findings."""
    out = text_features(text)
    out.update(char_features(text))
    out.update(concept_features(text))
    out.update(rule_features(found, negated))
    return out
