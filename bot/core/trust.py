"""Who the bot may write to (SPEC section 9), as pure functions.

- `normalise_address`: the form limits are counted on (case folded, "+tag" removed).
- `read_authentication`: what the `Authentication-Results` headers of the trusted servers
  (`mailbox.trusted_authserv_ids`) say about the sender; every other such header is ignored.
- `reply_target`: `From`, or `Reply-To` only for an authenticated sender.
- `recipient_problem`: the check every recipient passes right before it enters the outbox.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

MAX_RESULTS_CHARS = 4_000  # an Authentication-Results header longer than this is not read
_COMMENT = re.compile(r"\([^()]*\)")  # one level at a time; deeper nesting is simply not a result
_RESULT = re.compile(r"^\s*([a-z0-9_-]+)\s*=\s*([a-z0-9_-]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_LENIENT_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_PROPERTY = re.compile(r"\b([a-z0-9_-]+)\.([a-z0-9_-]+)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)


class Verdict(enum.StrEnum):
    """What the trusted servers say about the sender of one mail."""

    PASS = "pass"  # dmarc=pass, or dkim/spf pass aligned with the From domain
    FAIL = "fail"  # dmarc=fail: the sender's domain says this mail is not from it
    NONE = "none"  # nothing trusted says pass: unauthenticated


def normalise_address(addr: str) -> str:
    """"Ruth.Adams+Promo@Example.COM" -> "ruth.adams@example.com"; "" for an address without "@"."""
    local, at, domain = addr.strip().strip("<>").casefold().rpartition("@")
    if not at or not local:
        return ""
    local = local.split("+", 1)[0] or local
    return f"{local}@{domain.rstrip('.')}"


def address_domain(addr: str) -> str:
    return normalise_address(addr).rpartition("@")[2]


def _strip_comments(value: str) -> str:
    for _ in range(8):
        stripped = _COMMENT.sub(" ", value)
        if stripped == value:
            break
        value = stripped
    return value


@dataclass(frozen=True)
class AuthResult:
    method: str  # "dmarc", "dkim", "spf"...
    result: str  # "pass", "fail"...
    properties: tuple[tuple[str, str], ...]  # ("header.from", "example.com"), ("smtp.mailfrom", "a@b")...

    def prop(self, *names: str) -> str:
        return next((v for k, v in self.properties if k in names), "")


def parse_authentication_results(value: str) -> tuple[str, tuple[AuthResult, ...]]:
    """(authserv-id, results) of one header value (RFC 8601); ("", ()) when it cannot be read."""
    if len(value) > MAX_RESULTS_CHARS:
        return "", ()
    parts = _strip_comments(value).split(";")
    head = parts[0].split()
    if not head or "(" in head[0] or ")" in head[0]:  # an unclosed comment: not a server's header
        return "", ()
    results = []
    for part in parts[1:]:
        m = _RESULT.match(part)
        if m is None or m.group(1).lower() == "none":
            continue
        props = tuple((f"{p.lower()}.{q.lower()}", v.strip().lower()) for p, q, v in _PROPERTY.findall(m.group(3)))
        results.append(AuthResult(m.group(1).lower(), m.group(2).lower(), props))
    return head[0].lower(), tuple(results)


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other."""
    domain = domain.rpartition("@")[2].rstrip(".")
    if not domain or not from_domain:
        return False
    return domain == from_domain or domain.endswith("." + from_domain) or from_domain.endswith("." + domain)


def read_authentication(headers: Iterable[tuple[str, str]], trusted_ids: Iterable[str], from_addr: str) -> Verdict:
    """The verdict of the trusted servers' `Authentication-Results` (headers as (lower-cased name, value),
    topmost first). Only the topmost run of trusted headers is read: below the first header from any
    other server, a header naming a trusted server may have been written by the sender."""
    trusted = {t.strip().lower() for t in trusted_ids if t.strip()}
    if not trusted:
        return Verdict.NONE
    from_domain = address_domain(from_addr)
    results: list[AuthResult] = []
    for name, value in headers:
        if name != "authentication-results":
            continue
        server, found = parse_authentication_results(value)
        if server not in trusted:
            break
        results.extend(found)
    if any(r.method == "dmarc" and r.result == "fail" for r in results):
        return Verdict.FAIL
    for r in results:
        if r.result != "pass":
            continue
        if r.method == "dmarc" and (not r.prop("header.from") or _aligned(r.prop("header.from"), from_domain)):
            return Verdict.PASS
        if r.method == "dkim" and _aligned(r.prop("header.d", "header.i"), from_domain):
            return Verdict.PASS
        if r.method == "spf" and _aligned(r.prop("smtp.mailfrom"), from_domain):
            return Verdict.PASS
    return Verdict.NONE


def reply_target(from_addr: str, reply_to: str, verdict: Verdict) -> str:
    """Where an answer goes: `From`; `Reply-To` only when the sender was authenticated."""
    if verdict is Verdict.PASS and reply_to:
        return reply_to
    return from_addr


def recipient_problem(addr: str, own_addresses: Iterable[str] = (), *, internal: bool = False,
                      lenient_domains: frozenset[str] = frozenset()) -> str:
    """Why the bot must not write to `addr` ("" when it may), by email-validator without DNS: syntax,
    no single-label, localhost or special-use domain, never one of the bot's own addresses.
    `internal` (staff recipients from the settings) allows special-use domains, syntax still checked.
    Local parts with RFC-violating dots are accepted for `lenient_domains` (old Japanese carrier
    addresses, as the sorter's address check does). The text never repeats the address."""
    if not addr or "\n" in addr or "\r" in addr:
        return "no usable recipient address"
    own = {normalise_address(a) for a in own_addresses}
    if normalise_address(addr) in own:
        return "the recipient is one of the bot's own addresses"
    try:
        validate_email(addr, check_deliverability=False, test_environment=internal)
    except EmailNotValidError as exc:
        local, _, domain = addr.lower().rpartition("@")
        lenient = any(domain == d or domain.endswith("." + d) for d in lenient_domains)
        if not (lenient and local and _LENIENT_LOCAL.fullmatch(local)):
            return f"the recipient address is not valid: {exc}"
    except Exception as exc:  # fail closed: a validator that cannot decide refuses
        return f"the recipient address could not be checked ({type(exc).__name__})"
    if not internal and "." not in addr.rpartition("@")[2].strip("."):
        return "the recipient's domain has a single label"
    return ""
