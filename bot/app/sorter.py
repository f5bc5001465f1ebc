"""The sorter measured and trained from labelled mail (`privacy-bot rules test`, `privacy-bot sorter ...`).

Measuring builds each labelled mail as a real MIME message and pushes it through the production path
(`parse_message` + `classify` with the loaded rules and model). Training (scikit-learn, the optional
`train` extra; never needed to run the bot) fits one linear SVM per kind on the features of
`bot.core.classify.features`, turns its margins into probabilities by Platt scaling fitted on
cross-validated margins, calibrates each kind's thresholds on those held-out probabilities, and
writes the model file that `bot.settings.load_model` reads. Everything is seeded: the same data gives
the same file, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.classify import classify, match_text, own_words, rule_hits
from bot.core.classify.features import FEATURES_VERSION, features
from bot.core.classify.labelled import LabelledError, LabelledMail, Sorted, mime_bytes, parse_lines
from bot.core.classify.rules import Rules
from bot.core.classify.scorer import MODEL_FORMAT, MODEL_VERSION, WEIGHT_SCALE, Model, model_from_data, pack_weights
from bot.core.errors import UsageError
from bot.core.model import KIND_ORDER, Kind
from bot.core.parse import parse_message

OWN = frozenset({"privacy@bot.test"})  # the address labelled mail is sent to
DEV_SET = Path(__file__).resolve().parents[2] / "tests" / "data" / "sorting" / "dev.jsonl"

# Training settings, fixed so that the committed model file can be rebuilt byte for byte.
C = 1.0  # regularisation of each kind's linear SVM (larger: fits the training mail more closely)
MIN_DOCS = 2  # a text feature must occur in this many training mails to be kept
MIN_CHAR_DOCS = 5  # a character n-gram, in this many: 40 % fewer features (and MB of memory), no loss measured
FOLDS = 5  # cross-validation folds for calibrating the thresholds
SEED = 20261201
SURE_FLOOR, SURE_CEILING = 0.2, 0.8  # the calibrated sure threshold stays within these
UNSURE_RATIO = 0.9  # the unsure threshold: this share of the sure one


def read_labelled(path: Path) -> list[LabelledMail]:
    """A labelled set (JSONL); UsageError naming the file and line for anything unusable."""
    try:
        with path.open(encoding="utf-8") as fh:
            mails = parse_lines(fh, str(path))
    except FileNotFoundError:
        raise UsageError(f"labelled set {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"labelled set {path} cannot be read: {exc}") from None
    except LabelledError as exc:
        raise UsageError(str(exc)) from None
    if not mails:
        raise UsageError(f"labelled set {path} has no mail in it")
    return mails


def default_set(given: str | None) -> Path:
    if given:
        return Path(given)
    if not DEV_SET.is_file():
        raise UsageError(f"no development set at {DEV_SET} (this is not a checkout): give --set FILE")
    return DEV_SET


# -- measuring ------------------------------------------------------------------------------------


def sort_labelled(mails: Sequence[LabelledMail], rules: Rules, model: Model | None,
                  own: frozenset[str] = OWN) -> list[Sorted]:
    """Each labelled mail as production sorts it: MIME bytes -> parse_message -> classify."""
    out = []
    for number, labelled in enumerate(mails, start=1):
        mail = parse_message(mime_bytes(labelled, number=number))
        result = classify(mail, rules, own_addresses=own, model=model)
        out.append(Sorted(labelled.id, labelled.kinds, result.kinds, bool(result.unsure),
                          result.suppress is not None or bool(mail.parse_error)))
    return out


# -- training -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One training mail: the sorter's normalised own-words text and the kinds it asks for."""

    text: str
    kinds: frozenset[Kind]
    origin: str  # "set" or "correction", for people


def examples_from_labelled(mails: Iterable[LabelledMail]) -> list[Example]:
    """The text each labelled mail shows the sorter in production (parsed from its MIME form)."""
    out = []
    for number, labelled in enumerate(mails, start=1):
        mail = parse_message(mime_bytes(labelled, number=number))
        out.append(Example(match_text(own_words(mail.subject, mail.text)), frozenset(labelled.kinds), "set"))
    return out


def example_features(example: Example, rules: Rules) -> dict[str, float]:
    fired, negated = rule_hits(example.text, rules)
    found = {r.kind.value for r in fired}
    return features(example.text, found, {r.kind.value for r in negated} - found)


def _import_sklearn() -> Any:
    try:
        import numpy
        from sklearn.feature_extraction import DictVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.svm import LinearSVC
    except ImportError:
        raise UsageError("training needs scikit-learn: pip install 'privacy-mailbox-bot[train]'") from None
    return numpy, DictVectorizer, LinearSVC, LogisticRegression


def _folds(n: int, k: int, seed: int) -> list[list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [sorted(order[i::k]) for i in range(k)]


@dataclass(frozen=True)
class _Fitted:
    """One linear SVM per kind over the kept features: margins, not yet probabilities."""

    vectoriser: Any  # sklearn DictVectorizer fitted on the kept features
    weights: Any  # numpy array, features x kinds
    bias: tuple[float, ...]

    def margins(self, rows: Sequence[dict[str, float]]) -> Any:
        return _int32(self.vectoriser.transform(rows)) @ self.weights + self.bias


def _int32(x: Any) -> Any:
    """liblinear takes 32-bit sparse indices only; DictVectorizer may hand out 64-bit ones."""
    x = x.tocsr()
    x.indices, x.indptr = x.indices.astype("int32"), x.indptr.astype("int32")
    return x


def _fit(rows: Sequence[dict[str, float]], labels: Sequence[frozenset[Kind]]) -> _Fitted:
    """Per kind, a linear SVM (squared hinge, classes balanced) on the features kept: text features in
    MIN_DOCS mails or more (character n-grams in MIN_CHAR_DOCS), every concept and rule feature."""
    numpy, DictVectorizer, LinearSVC, _ = _import_sklearn()
    docs: dict[str, int] = {}
    for row in rows:
        for name in row:
            docs[name] = docs.get(name, 0) + 1
    kept = [{name: v for name, v in row.items()
             if docs[name] >= (MIN_CHAR_DOCS if name.startswith("C:") else MIN_DOCS) or name[0] in "RK"} for row in rows]
    vec = DictVectorizer(sort=True)
    x = _int32(vec.fit_transform(kept))
    weights = numpy.zeros((x.shape[1], len(KIND_ORDER)))
    bias = []
    for k, kind in enumerate(KIND_ORDER):
        y = numpy.array([kind in kinds for kinds in labels], dtype=int)
        if y.min() == y.max():  # a kind nobody asked for (or everybody): a constant
            bias.append(-8.0 if y.max() == 0 else 8.0)
            continue
        clf = LinearSVC(C=C, class_weight="balanced", random_state=SEED, max_iter=20000)
        clf.fit(x, y)
        weights[:, k] = clf.coef_[0]
        bias.append(float(clf.intercept_[0]))
    return _Fitted(vec, weights, tuple(bias))


def _platt(margins: Any, y: Any) -> tuple[float, float]:
    """(a, b) with sigmoid(a * margin + b) the probability of the kind, fitted on held-out margins."""
    numpy, _, _, LogisticRegression = _import_sklearn()
    if y.min() == y.max():
        return 1.0, 0.0
    lr = LogisticRegression(C=1e4, solver="lbfgs", max_iter=1000)
    lr.fit(numpy.asarray(margins).reshape(-1, 1), y)
    return float(lr.coef_[0][0]), float(lr.intercept_[0])


def _calibrate(rows: Sequence[dict[str, float]], labels: Sequence[frozenset[Kind]]
               ) -> tuple[list[tuple[float, float]], list[float], list[float]]:
    """From cross-validated margins, per kind: the Platt scaling that turns a margin into a probability,
    the sure threshold with the fewest errors (a wrong kind and a missed one count alike: a form for a
    right not asked for, and no form for one asked for, both leave the customer waiting for staff) and
    the unsure threshold below it."""
    numpy, *_ = _import_sklearn()
    held_out = numpy.zeros((len(rows), len(KIND_ORDER)))
    for fold in _folds(len(rows), FOLDS, SEED):
        held = set(fold)
        train = [i for i in range(len(rows)) if i not in held]
        fitted = _fit([rows[i] for i in train], [labels[i] for i in train])
        held_out[fold] = fitted.margins([rows[i] for i in fold])
    platt, sure, unsure = [], [], []
    grid = [t / 100 for t in range(int(SURE_FLOOR * 100), int(SURE_CEILING * 100) + 1)]
    for k, kind in enumerate(KIND_ORDER):
        y = numpy.array([kind in kinds for kinds in labels], dtype=int)
        a, b = _platt(held_out[:, k], y)
        platt.append((a, b))
        probs = 1.0 / (1.0 + numpy.exp(-(a * held_out[:, k] + b)))
        pairs = list(zip(probs.tolist(), y.tolist(), strict=True))

        def cost(t: float, pairs: list[tuple[float, int]] = pairs) -> tuple[int, float]:
            wrong = sum(1 for p, yes in pairs if p >= t and not yes)
            missed = sum(1 for p, yes in pairs if p < t and yes)
            return wrong + missed, abs(t - 0.5)

        best = min(grid, key=cost)
        sure.append(best)
        unsure.append(best * UNSURE_RATIO)
    return platt, sure, unsure


def _as_model(fitted: _Fitted, platt: Sequence[tuple[float, float]], sure: Sequence[float],
              unsure: Sequence[float]) -> dict[str, Any]:
    """The model file's data: the Platt scaling folded into the weights (sigmoid(w.x + bias) is the
    probability), weights rounded to integers, features without any weight left out."""
    vocabulary = fitted.vectoriser.get_feature_names_out()
    scale = [a for a, _ in platt]
    kept_names: list[str] = []
    flat: list[int] = []
    for i, name in enumerate(vocabulary):
        row = [round(float(w) * a * WEIGHT_SCALE) for w, a in zip(fitted.weights[i], scale, strict=True)]
        if any(row):
            kept_names.append(str(name))
            flat.extend(row)
    return {
        "format": MODEL_FORMAT, "version": MODEL_VERSION, "features": FEATURES_VERSION,
        "kinds": [k.value for k in KIND_ORDER],
        "bias": [round(b0 * a + b, 4) for b0, (a, b) in zip(fitted.bias, platt, strict=True)],
        "sure": [round(s, 3) for s in sure],
        "unsure": [round(u, 3) for u in unsure],
        "vocabulary": kept_names,
        "weights": pack_weights(flat),
    }


def train(examples: Sequence[Example], rules: Rules) -> dict[str, Any]:
    """The model file's data, trained and calibrated from `examples`. Deterministic."""
    if len(examples) < FOLDS * 2:
        raise UsageError(f"training needs at least {FOLDS * 2} labelled mails (got {len(examples)})")
    rows = [example_features(e, rules) for e in examples]
    labels = [e.kinds for e in examples]
    platt, sure, unsure = _calibrate(rows, labels)
    data = _as_model(_fit(rows, labels), platt, sure, unsure)
    data["trained_on"] = trained_on(examples)
    return data


def trained_on(examples: Sequence[Example]) -> str:
    """What a model was trained from, for people and for checking that it matches a labelled set:
    "11357 from set; examples sha256 ..." (the hash of each example's kinds and text)."""
    digest = hashlib.sha256("\n".join(f"{sorted(k.value for k in e.kinds)}\t{e.text}" for e in examples)
                            .encode("utf-8")).hexdigest()[:16]
    origins = {o: sum(1 for e in examples if e.origin == o) for o in sorted({e.origin for e in examples})}
    return ", ".join(f"{n} from {o}" for o, n in origins.items()) + f"; examples sha256 {digest}"


def model_json(data: dict[str, Any]) -> str:
    """The model file's text: stable key order, one line per block, so it diffs and rebuilds byte for byte."""
    head = {k: v for k, v in data.items() if k not in ("vocabulary", "weights")}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append(f'  "vocabulary": {json.dumps(data["vocabulary"], ensure_ascii=False)},')
    lines.append(f'  "weights": {json.dumps(data["weights"])}')
    lines.append("}")
    return "\n".join(lines) + "\n"


def cross_validate(mails: Sequence[LabelledMail], rules: Rules, folds: int = FOLDS) -> list[Sorted]:
    """Each mail sorted by a model trained without it (k folds), through the production path."""
    out: dict[str, Sorted] = {}
    examples = examples_from_labelled(mails)
    for fold in _folds(len(mails), folds, SEED + 1):
        held = set(fold)
        model = model_from_data(train([e for i, e in enumerate(examples) if i not in held], rules))
        for got in sort_labelled([mails[i] for i in fold], rules, model):
            out[got.id] = got
    return [out[m.id] for m in mails]
