"""TLS for the mail servers: verified by default against the system CAs plus an optional CA file."""

from __future__ import annotations

import ssl


def tls_context(verify: bool, ca_file: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx
