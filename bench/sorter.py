"""The sorter's speed and memory: `python -m bench.sorter` (issue 11).

Loads the shipped model, then sorts every mail of the development set through parse_message +
classify, with and without the model, and prints the time per mail and the model's memory.
"""

from __future__ import annotations

import time
import tracemalloc

from bot.app.sorter import DEV_SET, OWN, read_labelled
from bot.core.classify import classify
from bot.core.classify.labelled import mime_bytes
from bot.core.parse import parse_message
from bot.settings import default_model_path, default_rules_path, load_model, load_rules


def main() -> None:
    rules = load_rules(default_rules_path())
    tracemalloc.start()
    started = time.perf_counter()
    model = load_model(default_model_path())
    load_ms = (time.perf_counter() - started) * 1000
    model_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    mails = [parse_message(mime_bytes(m, number=i)) for i, m in enumerate(read_labelled(DEV_SET), 1)]
    for label, used in (("rules only", None), ("rules + model", model)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            for mail in mails:
                classify(mail, rules, own_addresses=OWN, model=used)
            best = min(best, time.perf_counter() - started)
        print(f"{label:14} {best * 1000 / len(mails):6.2f} ms per mail ({len(mails)} mails, best of 3)")
    print(f"model: {len(model.index)} features, loaded in {load_ms:.0f} ms, {model_bytes / 1e6:.1f} MB in memory")


if __name__ == "__main__":
    main()
