"""`rules test [--set FILE] [--json]`: how the current rules and model sort a labelled set.

Each labelled mail is built as a real MIME message and pushed through parse_message + classify, as
production does; the figures are per-kind precision and recall, the confusion matrix and the share of
mail whose request form decision was wrong. Runs without a config file (the shipped rules and model),
or with `--config` / $BOT_CONFIG for an admin's own `paths.rules` and `sorter.model`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bot.settings import Settings


def handle(args: argparse.Namespace, settings: Settings | None, _hooks: Any) -> int:
    from bot.app.sorter import OWN, default_set, read_labelled, sort_labelled
    from bot.core.classify.labelled import figures_json, figures_table, measure
    from bot.settings import default_rules_path, load_rules, sorter_model

    rules = load_rules(Path(settings.paths.rules) if settings is not None else default_rules_path())
    model = None if args.rules_only else sorter_model(settings)
    path = default_set(args.set)
    mails = read_labelled(path)
    own = settings.own_addresses | OWN if settings is not None else OWN
    figures = measure(sort_labelled(mails, rules, model, own))
    what = "rules only" if model is None else f"rules + model {model.source}"
    if args.json:
        data: dict[str, Any] = {"set": str(path), "rules": rules.source, "model": model.source if model else None,
                                **figures_json(figures)}
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(figures_table(figures, f"{path}: {figures.mails} mails, {what}"))
    return 0
