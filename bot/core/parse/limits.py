"""Bounds on what the parser keeps of one mail, and the exceptions hostile input can raise."""

from __future__ import annotations

from email.errors import MessageError

MAX_TEXT = 200_000
MAX_SUBJECT = 2_000
MAX_HEADER_VALUE = 4_000
MAX_HEADERS = 500
MAX_IDS = 100
MAX_PARTS = 2_000
MAX_DEPTH = 50
MAX_ADDRESSES = 500
MAX_NAME = 500
MAX_FILENAME = 255
MAX_DEFECTS = 100
# Decoding never needs more raw header than this to fill the capped values above, and it bounds the
# work a hostile 200 KB header can cause.
MAX_RAW_HEADER = 65_536
# A mail fetched in part (adapters.imap) brings at most this much of its header; a header that
# long arrived cut, and parse_message says so in a defect.
MAX_FETCHED_HEADER = 256 * 1024
MAX_HTML = 1_000_000
DETECT_SAMPLE = 65_536

SYNTHETIC_DOMAIN = "privacy-bot.invalid"

# What the email package, codecs, charset_normalizer and html.parser raise on hostile input, e.g.
# AttributeError for `To: unlisted-recipients:;`, AssertionError from _markupbase, OverflowError for a
# Date with a 20-digit year, RecursionError for absurd nesting. Catching these part by part keeps the
# rest of the message.
BAD_INPUT: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    AssertionError,
    ArithmeticError,
    RuntimeError,
    MessageError,
)
