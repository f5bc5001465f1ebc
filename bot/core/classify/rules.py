"""The sorter's rule file (`config/rules.toml`) as values, checked once at start-up.

`rules_from_data` turns the parsed TOML (read by `bot.settings.load_rules`) into frozen `Rules` with every regular expression compiled.
Any problem (bad TOML, missing or unknown key, unknown kind, bad regular expression,
a pattern that could never match normalised text or that matches everything) is a
`ConfigError` naming the file and the rule id or key.

The file format is described in the comments of `config/rules.toml` itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.errors import ConfigError
from bot.core.model import Kind

RULES_VERSION = 1

# `{{name}}` in a pattern is replaced by the [define] entry `name`, wrapped in (?:...).
_MACRO = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_RULE_ID = re.compile(r"^[a-z0-9_]+(?:\.[a-z0-9_]+)*$")
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # RFC 5322 field name: printable ASCII except ':'
_FLAGS = re.IGNORECASE


@dataclass(frozen=True)
class Rule:
    """One kind rule: fires when any of its patterns is found in the normalised, unquoted text."""

    id: str
    kind: Kind
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class HeaderRule:
    """Fires when header `name` is present and (if `pattern` is set) its decoded value matches it."""

    id: str
    name: str  # lower-cased header name
    pattern: re.Pattern[str] | None  # None: being present is enough


@dataclass(frozen=True)
class BounceRules:
    headers: tuple[HeaderRule, ...]
    late_headers: tuple[HeaderRule, ...]  # checked only after the auto-reply rules found nothing
    content_types: frozenset[str]  # top-level or any attachment's content type
    sender_local_parts: tuple[re.Pattern[str], ...]  # From local part
    sender_names: tuple[re.Pattern[str], ...]  # From display name
    weak_sender_local_parts: tuple[re.Pattern[str], ...]  # count only with corroborating text
    corroborating_text: tuple[re.Pattern[str], ...]
    subjects: tuple[re.Pattern[str], ...]
    returned_parts: frozenset[str] = frozenset()  # a returned message's type: counts with corroborating text


@dataclass(frozen=True)
class AutoReplyRules:
    headers: tuple[HeaderRule, ...]
    subjects: tuple[re.Pattern[str], ...]  # English and Japanese; enough on their own
    weak_subjects: tuple[re.Pattern[str], ...]  # count only together with a weak_subject_headers hit
    weak_subject_headers: tuple[HeaderRule, ...]  # e.g. X-MS-Exchange-Inbox-Rules-Loop


@dataclass(frozen=True)
class BulkRules:
    headers: tuple[HeaderRule, ...]
    content_types: frozenset[str]
    sender_local_parts: tuple[re.Pattern[str], ...]  # From, Sender and Return-Path local parts


@dataclass(frozen=True)
class AddressRules:
    no_reply_local_parts: tuple[re.Pattern[str], ...]  # reply address local part
    lenient_domains: frozenset[str]  # accept RFC-violating dots in local parts (old docomo/au)


@dataclass(frozen=True)
class Rules:
    kind_rules: tuple[Rule, ...]
    bounce: BounceRules
    auto_reply: AutoReplyRules
    bulk: BulkRules
    address: AddressRules
    source: str = ""  # the file the rules came from, for messages


def rules_from_data(data: Mapping[str, Any], *, source: str = "<rules>") -> Rules:
    """Builds `Rules` from parsed TOML (also used by tests with inline TOML)."""
    return _Loader(source).load(data)


class _Loader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.defines: dict[str, str] = {}

    def fail(self, where: str, problem: str) -> ConfigError:
        return ConfigError(f"rule file {self.source}: {where}: {problem}")

    def load(self, data: Mapping[str, Any]) -> Rules:
        self.known(data, "top level", {"version", "define", "rule", "bounce", "auto_reply", "bulk", "address"})
        version = data.get("version")
        if version != RULES_VERSION:
            raise self.fail("key version", f"must be {RULES_VERSION} (got {version!r})")
        self.defines = self.load_defines(data.get("define", {}))
        return Rules(
            kind_rules=self.load_kind_rules(data.get("rule")),
            bounce=self.load_bounce(self.table(data, "bounce")),
            auto_reply=self.load_auto_reply(self.table(data, "auto_reply")),
            bulk=self.load_bulk(self.table(data, "bulk")),
            address=self.load_address(self.table(data, "address")),
            source=self.source,
        )

    # -- structure helpers ---------------------------------------------------------

    def known(self, table: Mapping[str, Any], where: str, keys: set[str]) -> None:
        unknown = sorted(set(table) - keys)
        if unknown:
            raise self.fail(where, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(keys))})")

    def table(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = data.get(key)
        if not isinstance(value, dict):
            raise self.fail(f"[{key}]", "section is missing" if value is None else "must be a table")
        return value

    def strings(self, table: Mapping[str, Any], key: str, where: str, *, allow_empty: bool = True) -> list[str]:
        value = table.get(key)
        if value is None:
            raise self.fail(where, f"key {key} is missing")
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"key {key} must be a list of strings")
        if not allow_empty and not value:
            raise self.fail(where, f"key {key} must not be empty")
        return list(value)

    def load_defines(self, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict):
            raise self.fail("[define]", "must be a table of name = 'regex'")
        defines: dict[str, str] = {}
        for name, value in raw.items():
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise self.fail(f"define {name}", "must be name = 'regex' with a plain name")
            defines[name] = value
        self.defines = defines
        for name, value in defines.items():  # check each one on its own, to name the culprit
            expanded = self.expand(value, f"define {name}")
            self.compile(expanded, f"define {name}", may_match_empty=True, raw=value)
        return defines

    def expand(self, pattern: str, where: str) -> str:
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.defines:
                raise self.fail(where, f"unknown define {{{{{name}}}}} (add it under [define])")
            return f"(?:{self.defines[name]})"

        for _ in range(8):
            expanded = _MACRO.sub(sub, pattern)
            if expanded == pattern:
                return expanded
            pattern = expanded
        raise self.fail(where, "defines nest too deeply (does a define refer to itself?)")

    def compile(self, pattern: str, where: str, *, may_match_empty: bool = False, raw: str = "") -> re.Pattern[str]:
        raw = raw or pattern
        if unicodedata.normalize("NFKC", raw) != raw:
            raise self.fail(
                where,
                f"pattern {raw!r} contains characters that never occur in normalised text "
                "(full-width letters or digits, half-width kana, ...): write them in their NFKC form",
            )
        try:
            compiled = re.compile(pattern, _FLAGS)
        except re.error as exc:
            raise self.fail(where, f"bad regular expression {raw!r}: {exc}") from None
        if not may_match_empty and compiled.search("") is not None:
            raise self.fail(where, f"pattern {raw!r} matches empty text, so it would match every mail")
        return compiled

    def patterns(self, table: Mapping[str, Any], key: str, where: str) -> tuple[re.Pattern[str], ...]:
        out = []
        for i, pattern in enumerate(self.strings(table, key, where), start=1):
            label = f"{where} {key}[{i}]"
            out.append(self.compile(self.expand(pattern, label), label, raw=pattern))
        return tuple(out)

    def content_types(self, table: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
        values = self.strings(table, key, where)
        for value in values:
            if not re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", value):
                raise self.fail(where, f"{key}: {value!r} is not a lower-case type/subtype")
        return frozenset(values)

    def header_rules(self, table: Mapping[str, Any], key: str, where: str) -> tuple[HeaderRule, ...]:
        raw = table.get(key, [])
        if not isinstance(raw, list):
            raise self.fail(where, f"{key} must be an array of tables ([[{where.strip('[]')}.{key}]])")
        out = []
        for i, item in enumerate(raw, start=1):
            if not isinstance(item, dict):
                raise self.fail(f"{where} {key}[{i}]", "must be a table with id, header and optional pattern")
            rule_id = self.rule_id(item, f"{where} {key}[{i}]")
            label = f"rule {rule_id}"
            self.known(item, label, {"id", "header", "pattern"})
            name = item.get("header")
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise self.fail(label, "key header must be a header name such as 'List-Id'")
            pattern = item.get("pattern")
            compiled: re.Pattern[str] | None = None
            if pattern is not None:
                if not isinstance(pattern, str):
                    raise self.fail(label, "key pattern must be a string (leave it out to match any value)")
                compiled = self.compile(self.expand(pattern, label), label, may_match_empty=True, raw=pattern)
            out.append(HeaderRule(id=rule_id, name=name.lower(), pattern=compiled))
        return tuple(out)

    def rule_id(self, item: Mapping[str, Any], where: str) -> str:
        rule_id = item.get("id")
        if not isinstance(rule_id, str) or not rule_id:
            raise self.fail(where, "key id is missing")
        if not _RULE_ID.fullmatch(rule_id):
            raise self.fail(f"rule {rule_id}", "id must be lower-case words joined by dots, e.g. 'deletion.en.erase'")
        return rule_id

    # -- sections ------------------------------------------------------------------

    def load_kind_rules(self, raw: Any) -> tuple[Rule, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("[[rule]]", "there must be at least one [[rule]] table")
        kinds = {k.value: k for k in Kind}
        seen: set[str] = set()
        rules = []
        for i, item in enumerate(raw, start=1):
            if not isinstance(item, dict):
                raise self.fail(f"[[rule]] number {i}", "must be a table")
            rule_id = self.rule_id(item, f"[[rule]] number {i}")
            where = f"rule {rule_id}"
            if rule_id in seen:
                raise self.fail(where, "id is used twice")
            seen.add(rule_id)
            self.known(item, where, {"id", "kind", "patterns"})
            kind = item.get("kind")
            if kind not in kinds:
                raise self.fail(where, f"unknown kind {kind!r} (known: {', '.join(kinds)})")
            self.strings(item, "patterns", where, allow_empty=False)
            rules.append(Rule(id=rule_id, kind=kinds[kind], patterns=self.patterns(item, "patterns", where)))
        return tuple(rules)

    def load_bounce(self, t: Mapping[str, Any]) -> BounceRules:
        w = "[bounce]"
        self.known(t, w, {"headers", "late_headers", "content_types", "sender_local_parts", "sender_names",
                          "weak_sender_local_parts", "corroborating_text", "subjects", "returned_parts"})
        return BounceRules(
            headers=self.header_rules(t, "headers", w),
            late_headers=self.header_rules(t, "late_headers", w),
            content_types=self.content_types(t, "content_types", w),
            sender_local_parts=self.patterns(t, "sender_local_parts", w),
            sender_names=self.patterns(t, "sender_names", w),
            weak_sender_local_parts=self.patterns(t, "weak_sender_local_parts", w),
            corroborating_text=self.patterns(t, "corroborating_text", w),
            subjects=self.patterns(t, "subjects", w),
            returned_parts=self.content_types(t, "returned_parts", w) if "returned_parts" in t else frozenset(),
        )

    def load_auto_reply(self, t: Mapping[str, Any]) -> AutoReplyRules:
        w = "[auto_reply]"
        self.known(t, w, {"headers", "subjects", "weak_subjects", "weak_subject_headers"})
        return AutoReplyRules(
            headers=self.header_rules(t, "headers", w),
            subjects=self.patterns(t, "subjects", w),
            weak_subjects=self.patterns(t, "weak_subjects", w),
            weak_subject_headers=self.header_rules(t, "weak_subject_headers", w),
        )

    def load_bulk(self, t: Mapping[str, Any]) -> BulkRules:
        w = "[bulk]"
        self.known(t, w, {"headers", "content_types", "sender_local_parts"})
        return BulkRules(
            headers=self.header_rules(t, "headers", w),
            content_types=self.content_types(t, "content_types", w),
            sender_local_parts=self.patterns(t, "sender_local_parts", w),
        )

    def load_address(self, t: Mapping[str, Any]) -> AddressRules:
        w = "[address]"
        self.known(t, w, {"no_reply_local_parts", "lenient_domains"})
        domains = self.strings(t, "lenient_domains", w)
        for domain in domains:
            if not re.fullmatch(r"[a-z0-9-]+(?:\.[a-z0-9-]+)+", domain):
                raise self.fail(w, f"lenient_domains: {domain!r} is not a lower-case domain name")
        return AddressRules(
            no_reply_local_parts=self.patterns(t, "no_reply_local_parts", w),
            lenient_domains=frozenset(domains),
        )
