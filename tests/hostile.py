"""A generator of hostile mail (issue 10): what anyone may write to a public privacy mailbox.

Every mail is written as bytes by hand, not built with the email package (which would refuse or
recurse on much of it): deep nesting of comments, angle brackets and groups in every address header,
giant headers and parts, thousands of parts, encoded-word tricks, forged Authentication-Results,
look-alike addresses, NULs and bare CRs. Each asks for deletion, so a bot that is fooled answers it.

    for name, raw in hostile_mails():
        ...

`by_append(raw)` says whether an IMAP APPEND can carry the mail (NULs and bare CRs cannot: such
mail reaches a mailbox by delivery, tests drop it into the Maildir).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

ADDRESS_HEADERS = ("To", "From", "Cc", "Reply-To", "Sender")
ASK = b"Please delete my personal data and close my account.\r\n"
MB = 1024 * 1024


def _mail(headers: list[tuple[str, bytes]], body: bytes = ASK, *, tag: str,
          content_type: bytes = b"text/plain; charset=utf-8") -> bytes:
    """Header lines as given (after defaults for the ones not given), a blank line, the body."""
    names = {name.lower() for name, _value in headers}
    defaults = [("From", b"Hostile Sender <hostile@example.com>"), ("To", b"privacy@bot.test"),
                ("Subject", f"Delete my data ({tag})".encode()), ("Date", b"Tue, 01 Dec 2026 10:00:00 +0900"),
                ("Message-ID", f"<{tag}@hostile.test>".encode()), ("MIME-Version", b"1.0"),
                ("Content-Type", content_type)]
    lines = [f"{name}: ".encode() + value for name, value in headers]
    lines += [f"{name}: ".encode() + value for name, value in defaults if name.lower() not in names]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _fold(value: bytes, width: int = 900) -> bytes:
    """A long value folded onto continuation lines (each under 998 bytes, as RFC 5322 wants)."""
    return b"\r\n ".join(value[i : i + width] for i in range(0, len(value), width))


def nesting(depth: int) -> dict[str, bytes]:
    """Address values nested `depth` deep, one of each shape."""
    return {
        "comments": b"(" * depth + b"x" + b")" * depth + b" victim@example.com",
        "open-comments": b"a@example.com " + b"(" * depth,  # never closed
        "angles": b"<" * depth + b"victim@example.com" + b">" * depth,
        "groups": b"".join(b"g%d: " % i for i in range(depth)) + b"victim@example.com" + b";" * depth,
        "quotes-and-comments": b'"' + b'\\"(' * depth + b'" <victim@example.com>',
    }


def deep_nesting() -> Iterator[tuple[str, bytes]]:
    """Every address header, every shape, nested 300 deep (under 998 bytes a line) and 1,200 deep."""
    for header in ADDRESS_HEADERS:
        for depth in (300, 1200):
            for shape, value in nesting(depth).items():
                tag = f"nest-{header.lower()}-{shape}-{depth}"
                yield tag, _mail([(header, _fold(value))], tag=tag)


def giant_headers() -> Iterator[tuple[str, bytes]]:
    yield "header-1mb-line", _mail([("X-Junk", b"a" * MB)], tag="header-1mb-line")
    yield "header-1mb-folded", _mail([("X-Junk", _fold(b"b" * MB))], tag="header-1mb-folded")
    many = b", ".join(b"r%d@example.com" % i for i in range(60_000))  # about 1 MB of To:
    yield "header-1mb-to", _mail([("To", _fold(many))], tag="header-1mb-to")
    yield "headers-20000", _mail([(f"X-Trace-{i}", b"hop") for i in range(20_000)], tag="headers-20000")


def giant_parts(attachment_bytes: int = 3 * MB) -> Iterator[tuple[str, bytes]]:
    """A short text and a big attachment; one with a 1 MB header too (fetched in part, header capped)."""
    boundary = b"b0undary"
    blob = base64.encodebytes(b"\x89PNG" * (attachment_bytes // 4))
    body = (b"--" + boundary + b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + ASK
            + b"--" + boundary + b"\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=scan.png\r\n\r\n" + blob + b"--" + boundary + b"--\r\n")
    ctype = b'multipart/mixed; boundary="' + boundary + b'"'
    yield "part-3mb", _mail([], body, tag="part-3mb", content_type=ctype)
    yield "part-3mb-nested-to", _mail([("To", b"(" * 300 + b"privacy@bot.test")], body,  # issue 10 finding 1
                                      tag="part-3mb-nested-to", content_type=ctype)
    yield "part-3mb-header-1mb", _mail([("X-Junk", _fold(b"c" * MB))], body, tag="part-3mb-header-1mb",
                                       content_type=ctype)
    one_line = b"x" * (2 * MB)  # a text part of one 2 MB line
    yield "text-2mb-one-line", _mail([], ASK + one_line + b"\r\n", tag="text-2mb-one-line")


def many_parts(count: int = 3000) -> Iterator[tuple[str, bytes]]:
    parts = b"".join(b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i for i in range(count))
    body = b"--p\r\nContent-Type: text/plain\r\n\r\n" + ASK + parts + b"--p--\r\n"
    yield f"parts-{count}", _mail([], body, tag=f"parts-{count}", content_type=b'multipart/mixed; boundary="p"')
    deep = b"".join(b'--d%d\r\nContent-Type: multipart/mixed; boundary="d%d"\r\n\r\n' % (i, i + 1) for i in range(400))
    yield "multipart-400-deep", _mail([], deep + ASK, tag="multipart-400-deep",
                                      content_type=b'multipart/mixed; boundary="d0"')


def encoded_words() -> Iterator[tuple[str, bytes]]:
    cases = {
        "ew-broken-base64": [("Subject", b"=?utf-8?B?!!!not*base64===?=")],
        "ew-unknown-charset": [("Subject", b"=?x-unknown-42?Q?abc?= =?utf-99?B?YWJj?=")],
        "ew-in-address": [("From", b"=?utf-8?B?cHJpdmFjeUBib3QudGVzdA==?= <=?utf-8?Q?privacy=40bot.test?=>")],
        "ew-in-reply-to": [("Reply-To", b"=?utf-8?Q?root=40localhost?=")],
        "ew-overlong": [("Subject", _fold(b"=?utf-8?B?" + base64.b64encode(b"\xe5\x89\x8a" * 20_000) + b"?="))],
        "ew-many": [("Subject", _fold(b" ".join(b"=?utf-8?Q?a=%02X?=" % (i % 256) for i in range(20_000))))],
        "ew-nested": [("Subject", b"=?utf-8?B?" + base64.b64encode(b"=?utf-8?B?PT91dGYtOD9CP3g/PQ==?=") + b"?=")],
        "ew-iso2022-broken": [("Subject", b"=?iso-2022-jp?B?GyRCJTkbKEI\x1b$B?=")],
    }
    for tag, headers in cases.items():
        yield tag, _mail(headers, tag=tag)


def forged_authentication() -> Iterator[tuple[str, bytes]]:
    forged = b"mx.bot.test; spf=pass smtp.mailfrom=bank.example; dkim=pass header.d=bank.example; dmarc=pass"
    yield "auth-forged-pass", _mail([("Authentication-Results", forged), ("From", b"Bank <security@bank.example>")],
                                    tag="auth-forged-pass")
    many = [("Authentication-Results", forged) for _ in range(500)]
    yield "auth-forged-500", _mail(many, tag="auth-forged-500")
    nested = b"mx.bot.test; dmarc=pass (" + b"(" * 500 + b")" * 500 + b")"
    yield "auth-nested-comment", _mail([("Authentication-Results", nested)], tag="auth-nested-comment")


def look_alikes() -> Iterator[tuple[str, bytes]]:
    cases = {
        "lookalike-cyrillic": "privacy@b\u043et.test",  # Cyrillic o
        "lookalike-fullwidth": "\uff50rivacy@bot.test",
        "lookalike-idn": "privacy@xn--bt-9ka.test",
        "lookalike-suffix": "privacy@bot.test.evil.example",
        "lookalike-rtl": "privacy@\u202etset.tob",
        "lookalike-zero-width": "priv\u200bacy@bot.test",
    }
    for tag, address in cases.items():
        value = address.encode()
        yield tag, _mail([("From", b"Privacy Office <" + value + b">"), ("Reply-To", value)], tag=tag)


def control_bytes() -> Iterator[tuple[str, bytes]]:
    yield "nul-everywhere", _mail([("Subject", b"Delete\x00 my data"), ("From", b"Ken\x00 <ken\x00@example.jp>")],
                                  ASK.replace(b"my", b"my\x00"), tag="nul-everywhere")
    yield "bare-cr", _mail([("Subject", b"Delete\rmy data"), ("X-Cr", b"a\rb\rc")], b"Please\rdelete my data.\r\n",
                           tag="bare-cr")
    yield "bare-cr-header-end", b"From: cr@example.com\rTo: privacy@bot.test\rSubject: x\r\r" + ASK


def hostile_mails() -> Iterator[tuple[str, bytes]]:
    """Every hostile mail of this module, as (name, raw bytes)."""
    for family in (deep_nesting, giant_headers, giant_parts, many_parts, encoded_words, forged_authentication,
                   look_alikes, control_bytes):
        yield from family()


def by_append(raw: bytes) -> bool:
    """Whether IMAP APPEND can carry the mail as it is (no NUL, no bare CR)."""
    return b"\x00" not in raw and b"\r" not in raw.replace(b"\r\n", b"")
