"""`sorter train [--with-corrections] [--set FILE] [--out FILE]` and `sorter cv [--set FILE] [--json]`.

`train` rebuilds the sorter's model from a labelled set (default: the development set of the checkout)
and, with --with-corrections, the kinds staff set on cases (`cases set-kinds`); it writes the model
file (default: the one shipped in the package, or `sorter.model` when a config names one). Training
is seeded: the same examples give the same file, byte for byte. `cv` prints cross-validated figures:
each mail sorted by a model trained without it. Both need the `train` extra (scikit-learn).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bot.settings import Settings


def handle(args: argparse.Namespace, settings: Settings | None, _hooks: Any) -> int:
    from bot.app import sorter
    from bot.core.errors import UsageError
    from bot.settings import default_model_path, default_rules_path, load_rules

    rules = load_rules(Path(settings.paths.rules) if settings is not None else default_rules_path())
    path = sorter.default_set(args.set)
    mails = sorter.read_labelled(path)
    if args.action == "cv":
        from bot.core.classify.labelled import figures_json, figures_table, measure

        figures = measure(sorter.cross_validate(mails, rules, args.folds))
        if args.json:
            print(json.dumps({"set": str(path), "folds": args.folds, **figures_json(figures)}, indent=2))
        else:
            print(figures_table(figures, f"{path}: {figures.mails} mails, {args.folds}-fold cross-validation"))
        return 0
    examples = sorter.examples_from_labelled(mails)
    if args.with_corrections:
        if settings is None:
            raise UsageError("--with-corrections reads the database: give --config (or set BOT_CONFIG)")
        from bot.adapters.store.corrections import training_corrections
        from bot.adapters.store.engine import make_engine

        found = training_corrections(make_engine(settings.database.url))
        examples += [sorter.Example(text, kinds, "correction") for text, kinds in found]
        print(f"{len(found)} staff correction(s) with text added to {len(mails)} labelled mails", file=sys.stderr)
    out = Path(args.out) if args.out else (
        Path(settings.sorter.model) if settings is not None and settings.sorter.model else default_model_path())
    data = sorter.train(examples, rules)
    text = sorter.model_json(data)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the model to {out}: {exc}") from None
    print(f"model written to {out}: {len(data['vocabulary'])} features, trained on {data['trained_on']}")
    return 0
