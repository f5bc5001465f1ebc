"""The raw SMTP limit, in its own process (as the bot is): M messages of one size over C connections.

    python -m bench.rawsend --port P --count M --size BYTES --connections 8
prints {"seconds": ..., "sent": ...} as JSON; the clock runs from the first connect to the last 250.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiosmtplib


def synthetic_reply(size: int, i: int) -> bytes:
    head = (f"From: Privacy Office <privacy@bot.test>\r\nTo: raw{i}@example.com\r\nSubject: raw {i}\r\n"
            f"Message-ID: <raw-{i}@bot.test>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=us-ascii\r\n\r\n").encode()
    line = b"A" * 76 + b"\r\n"
    body_len = max(0, size - len(head))
    return head + (line * (body_len // len(line) + 1))[:body_len]


async def send_all(port: int, messages: list[bytes], connections: int) -> int:
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for i, m in enumerate(messages):
        queue.put_nowait((i, m))
    sent = 0

    async def worker() -> None:
        nonlocal sent
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, use_tls=False, timeout=60)
        await smtp.connect()
        try:
            while not queue.empty():
                i, m = queue.get_nowait()
                await smtp.sendmail("privacy@bot.test", [f"raw{i}@example.com"], m)
                sent += 1
        finally:
            await smtp.quit()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return sent


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--connections", type=int, default=8)
    a = p.parse_args()
    messages = [synthetic_reply(a.size, i) for i in range(a.count)]
    t0 = time.monotonic()
    sent = asyncio.run(send_all(a.port, messages, a.connections))
    print(json.dumps({"seconds": time.monotonic() - t0, "sent": sent}))


if __name__ == "__main__":
    main()
