"""Labelled mail for measuring and training the sorter: one JSON object per line (the format of
tests/data/sorting/*.jsonl), turned into a real MIME message, and the figures of a sorted set.

Pure: the shell reads the file and hands the lines in; `mime_bytes` builds the message with the
standard library, so that `rules test` pushes it through the same `parse_message` + `classify` as
production; `measure` turns (labelled kinds, sorted kinds) pairs into per-kind precision and recall,
a confusion matrix and the share of mail whose request form decision was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from bot.core.model import KIND_ORDER, RIGHTS_KINDS, Kind

_KEYS = {"id", "language", "from", "subject", "text", "html", "kinds", "tags", "note"}
_REQUIRED = {"id", "kinds"}
_KINDS = {k.value: k for k in Kind}
_DATE = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


class LabelledError(ValueError):
    """A line of a labelled set that cannot be used; the message names the line."""


@dataclass(frozen=True)
class LabelledMail:
    id: str
    kinds: tuple[Kind, ...]  # in KIND_ORDER; (GENERAL,) alone for a mail that asks for nothing
    subject: str = ""
    text: str | None = None
    html: str | None = None  # HTML-only mail when text is None
    sender: str = "Ruth Adams <ruth.adams@example.net>"
    language: str = ""
    tags: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        """The text a trainer sees when it does not parse the MIME message (plain text or the HTML)."""
        return self.text if self.text is not None else (self.html or "")


def parse_line(line: str, where: str) -> LabelledMail | None:
    """One JSONL line as a `LabelledMail`; None for a blank line. LabelledError names `where`."""
    if not line.strip():
        return None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LabelledError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise LabelledError(f"{where}: must be a JSON object")
    missing = sorted(_REQUIRED - set(obj))
    if missing:
        raise LabelledError(f"{where}: missing key(s) {', '.join(missing)}")
    unknown = sorted(set(obj) - _KEYS)
    if unknown:
        raise LabelledError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})")
    raw_kinds = obj["kinds"]
    if not isinstance(raw_kinds, list) or not raw_kinds or not all(isinstance(k, str) for k in raw_kinds):
        raise LabelledError(f"{where}: kinds must be a non-empty list of kind names")
    bad = [k for k in raw_kinds if k not in _KINDS]
    if bad:
        raise LabelledError(f"{where}: unknown kind(s) {', '.join(bad)} (known: {', '.join(_KINDS)})")
    kinds = frozenset(_KINDS[k] for k in raw_kinds)
    if Kind.GENERAL in kinds and len(kinds) > 1:
        raise LabelledError(f"{where}: general stands alone (a mail that asks for nothing specific)")
    for key in ("subject", "text", "html", "from", "language", "id"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise LabelledError(f"{where}: {key} must be a string or null")
    if obj.get("text") is None and obj.get("html") is None:
        raise LabelledError(f"{where}: give text or html")
    tags = obj.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise LabelledError(f"{where}: tags must be a list of strings")
    return LabelledMail(
        id=str(obj["id"]), kinds=tuple(k for k in KIND_ORDER if k in kinds), subject=obj.get("subject") or "",
        text=obj.get("text"), html=obj.get("html"), sender=obj.get("from") or LabelledMail.sender,
        language=obj.get("language") or "", tags=tuple(tags),
    )


def parse_lines(lines: Iterable[str], source: str) -> list[LabelledMail]:
    out = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        mail = parse_line(line, f"{source} line {number}")
        if mail is None:
            continue
        if mail.id in seen:
            raise LabelledError(f"{source} line {number}: id {mail.id!r} is used twice")
        seen.add(mail.id)
        out.append(mail)
    return out


def mime_bytes(mail: LabelledMail, *, to: str = "privacy@bot.test", number: int = 1) -> bytes:
    """The labelled mail as a customer's mail program would send it (HTML-only as text/html)."""
    m = EmailMessage()
    m["From"] = mail.sender
    m["To"] = to
    m["Subject"] = mail.subject
    m["Date"] = format_datetime(_DATE)
    m["Message-ID"] = f"<labelled-{number}@labelled.example>"
    if mail.text is not None:
        m.set_content(mail.text, charset="utf-8")
    else:
        m.set_content(mail.html or "", subtype="html", charset="utf-8")
    return m.as_bytes(policy=m.policy.clone(linesep="\r\n"))


# -- figures ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindFigures:
    kind: Kind
    labelled: int  # mails labelled with the kind
    sorted: int  # mails the bot sorted as the kind
    correct: int

    @property
    def precision(self) -> float:
        return self.correct / self.sorted if self.sorted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.labelled if self.labelled else 1.0


@dataclass(frozen=True)
class Figures:
    """How a labelled set was sorted. `confusion[(labelled, sorted)]` counts the mails labelled with the
    first kind that the bot sorted with the second (a mail with two kinds counts in both rows)."""

    mails: int
    kinds: tuple[KindFigures, ...]
    confusion: dict[tuple[Kind, Kind], int]
    exact: int  # mails whose sorted kinds are exactly the labelled ones
    unsure: int  # mails handed to staff because the sorter was unsure (sorted as general)
    suppressed: int  # mails the bot would never answer (sorted as general)
    form_missed: int  # rights requests that got no request form
    form_wrong: int  # mails that asked for no right but got the form
    wrong_kind_form: int  # got the form, but for a right that was not asked for (or missing one asked)
    errors: tuple[tuple[str, tuple[Kind, ...], tuple[Kind, ...]], ...] = field(default=())  # (id, labelled, sorted)

    @property
    def form_error_rate(self) -> float:
        return (self.form_missed + self.form_wrong) / self.mails if self.mails else 0.0

    def worst(self) -> float:
        """The lowest precision or recall of any kind."""
        return min([min(k.precision, k.recall) for k in self.kinds], default=1.0)


@dataclass(frozen=True)
class Sorted:
    """One labelled mail as the bot sorted it."""

    id: str
    labelled: tuple[Kind, ...]
    kinds: tuple[Kind, ...]  # the kinds the sorter was sure of
    unsure: bool = False  # handed to staff with the sorter's guesses
    suppressed: bool = False  # never answered (bounce, auto-reply, ...)


def measure(results: Sequence[Sorted]) -> Figures:
    """Figures of a sorted set. Sorted kinds are what the bot acts on: none, an unsure mail and a
    suppressed one count as general (handed to staff, no request form)."""
    confusion: dict[tuple[Kind, Kind], int] = {}
    labelled_n = dict.fromkeys(KIND_ORDER, 0)
    sorted_n = dict.fromkeys(KIND_ORDER, 0)
    correct_n = dict.fromkeys(KIND_ORDER, 0)
    exact = unsure_n = suppressed_n = missed = wrong = wrong_kind = 0
    errors = []
    for r in results:
        mail_id, labelled = r.id, r.labelled
        acted = (Kind.GENERAL,) if r.unsure or r.suppressed or not r.kinds else r.kinds
        unsure_n += r.unsure and not r.suppressed
        suppressed_n += r.suppressed
        for want in labelled:
            labelled_n[want] += 1
            for have in acted:
                confusion[(want, have)] = confusion.get((want, have), 0) + 1
        for have in acted:
            sorted_n[have] += 1
            correct_n[have] += have in labelled
        if set(acted) == set(labelled):
            exact += 1
        else:
            errors.append((mail_id, labelled, acted))
        asked = {k for k in labelled if k in RIGHTS_KINDS}
        formed = {k for k in acted if k in RIGHTS_KINDS}
        if asked and not formed:
            missed += 1
        elif formed and not asked:
            wrong += 1
        elif formed != asked:
            wrong_kind += 1
    return Figures(
        mails=len(results),
        kinds=tuple(KindFigures(k, labelled_n[k], sorted_n[k], correct_n[k]) for k in KIND_ORDER),
        confusion=confusion, exact=exact, unsure=unsure_n, suppressed=suppressed_n, form_missed=missed, form_wrong=wrong,
        wrong_kind_form=wrong_kind, errors=tuple(errors),
    )


_SHORT = {Kind.DISCLOSURE: "discl", Kind.AMENDMENT: "amend", Kind.ADDITION: "add", Kind.DELETION: "delete",
          Kind.THIRD_PARTY_STOP: "3rd-stop", Kind.MARKETING_OPT_OUT: "opt-out", Kind.GENERAL: "general"}


def figures_table(f: Figures, title: str) -> str:
    """The figures for people: per-kind precision and recall, the confusion matrix, the form errors."""
    lines = [title, "", f"{'kind':18} {'labelled':>8} {'sorted':>7} {'correct':>7} {'precision':>9} {'recall':>7}"]
    for k in f.kinds:
        lines.append(f"{k.kind.value:18} {k.labelled:8} {k.sorted:7} {k.correct:7} {k.precision:9.3f} {k.recall:7.3f}")
    lines += ["", "confusion (rows: labelled kind, columns: sorted kind; a mail with two kinds counts in both rows)",
              f"{'':18}" + "".join(f"{_SHORT[k]:>9}" for k in KIND_ORDER)]
    for want in KIND_ORDER:
        lines.append(f"{want.value:18}" + "".join(f"{f.confusion.get((want, have), 0):9}" for have in KIND_ORDER))
    lines += [
        "",
        f"mails: {f.mails}; sorted exactly right: {f.exact} ({f.exact / max(f.mails, 1):.1%}); "
        f"handed to staff as unsure: {f.unsure}; never answered: {f.suppressed}",
        f"rights requests that got no form: {f.form_missed}; non-rights mail that got one: {f.form_wrong}; "
        f"together {f.form_error_rate:.1%} of the mails",
        f"form sent but for other rights than asked: {f.wrong_kind_form}",
        f"lowest precision or recall of any kind: {f.worst():.3f}",
    ]
    return "\n".join(lines)


def figures_json(f: Figures) -> dict[str, object]:
    return {
        "mails": f.mails,
        "kinds": {k.kind.value: {"labelled": k.labelled, "sorted": k.sorted, "correct": k.correct,
                                 "precision": round(k.precision, 4), "recall": round(k.recall, 4)} for k in f.kinds},
        "confusion": {want.value: {have.value: f.confusion.get((want, have), 0) for have in KIND_ORDER}
                      for want in KIND_ORDER},
        "exact": f.exact,
        "unsure": f.unsure,
        "suppressed": f.suppressed,
        "form_missed": f.form_missed,
        "form_wrong": f.form_wrong,
        "form_error_rate": round(f.form_error_rate, 4),
        "wrong_kind_form": f.wrong_kind_form,
        "worst": round(f.worst(), 4),
    }
