"""The request form's cost and size: `python -m bench.form_pdf` (issue 12).

The form is built for every rights reply, with every font embedded (subsets of IPAex Gothic and
Liberation Sans). Prints the first build (font loading), then per-form times over N builds (wall
time: min, median, p95; CPU time of the process: median, which a busy machine disturbs less) and
the PDF size, for the Japanese and the English form, each with a different reference per build
as in real use.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import date

from bot.compose.form_pdf import request_form_pdf
from bot.core.model import Kind

JA_ADDRESS = "〒100-0005\n東京都千代田区丸の内1-2-3 サンプルビル5階\nサンプル株式会社 個人情報お問い合わせ窓口"
EN_ADDRESS = "Privacy Office, Sample Co., Ltd.\n1-2-3 Marunouchi\nChiyoda-ku, Tokyo 100-0005, Japan"


def build(language: str, number: int) -> bytes:
    ja = language == "ja"
    return request_form_pdf(
        ref=f"PRV-2026-{number:05d}", requester=f"person{number}@example.{'jp' if ja else 'com'}",
        language=language, kinds=(Kind.DISCLOSURE, Kind.DELETION), opened_on=date(2026, 12, 18),
        postal_address=JA_ADDRESS if ja else EN_ADDRESS,
        company_name="サンプル株式会社" if ja else "Sample Co., Ltd.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="builds per language")
    args = parser.parse_args()
    started = time.perf_counter()
    build("ja", 0)
    print(f"first form (fonts loaded): {(time.perf_counter() - started) * 1000:.0f} ms")
    for language in ("ja", "en"):
        times, cpu, size = [], [], 0
        for number in range(1, args.n + 1):
            started, started_cpu = time.perf_counter(), time.process_time()
            pdf = build(language, number)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
            size = max(size, len(pdf))
        times.sort()
        print(f"{language}: wall min {times[0]:.2f} ms, median {statistics.median(times):.2f} ms, "
              f"p95 {times[int(len(times) * 0.95) - 1]:.2f} ms; CPU median {statistics.median(cpu):.2f} ms "
              f"per form ({args.n} forms); largest {size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
