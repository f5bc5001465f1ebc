"""The sorter's model as a value: per-kind linear weights over `features`, and the confidence
thresholds calibrated when it was trained (`privacy-bot sorter train`).

The shell reads the model file (`bot.settings.load_model`) and hands the parsed data to
`model_from_data`; `Model.scores` is pure, deterministic and takes well under a millisecond per
kilobyte of text. A kind is *sure* at or above its `sure` threshold, *unsure* between `unsure` and
`sure` (the mail then goes to staff with the guesses shown), and not asked for below.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.classify.features import FEATURES_VERSION
from bot.core.errors import ConfigError
from bot.core.model import Kind

MODEL_FORMAT = "privacy-bot-sorter"
MODEL_VERSION = 1
WEIGHT_SCALE = 1000  # weights are stored as integers: round(weight * WEIGHT_SCALE)


@dataclass(frozen=True)
class Model:
    kinds: tuple[Kind, ...]
    bias: tuple[float, ...]
    sure: tuple[float, ...]  # per kind: at or above, the sorter is sure
    unsure: tuple[float, ...]  # per kind: at or above (and below sure), it is unsure
    index: Mapping[str, int]  # feature -> row in weights
    weights: array  # type: ignore[type-arg]  # row-major, len(index) * len(kinds) floats
    source: str = ""
    trained_on: str = ""  # what it was trained from, for people

    def scores(self, feats: Mapping[str, float]) -> dict[Kind, float]:
        """The probability of each kind for these features."""
        n = len(self.kinds)
        totals = list(self.bias)
        weights, index = self.weights, self.index
        for name, value in feats.items():
            row = index.get(name)
            if row is None:
                continue
            base = row * n
            for k in range(n):
                totals[k] += weights[base + k] * value
        return {kind: _sigmoid(t) for kind, t in zip(self.kinds, totals, strict=True)}

    def threshold(self, kind: Kind) -> tuple[float, float]:
        """(unsure, sure) thresholds of a kind."""
        i = self.kinds.index(kind)
        return self.unsure[i], self.sure[i]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def model_from_data(data: Any, *, source: str = "<model>") -> Model:
    """The parsed model file as a `Model`; ConfigError naming the file and the problem."""

    def fail(problem: str) -> ConfigError:
        return ConfigError(f"sorter model {source}: {problem} (rebuild it with `privacy-bot sorter train`)")

    if not isinstance(data, dict) or data.get("format") != MODEL_FORMAT:
        raise fail(f"not a sorter model file (format must be {MODEL_FORMAT!r})")
    if data.get("version") != MODEL_VERSION:
        raise fail(f"version must be {MODEL_VERSION} (got {data.get('version')!r})")
    if data.get("features") != FEATURES_VERSION:
        raise fail(f"made for features {data.get('features')!r}, this bot reads {FEATURES_VERSION!r}")
    known = {k.value: k for k in Kind}
    raw_kinds = data.get("kinds")
    if not isinstance(raw_kinds, list) or not raw_kinds or any(k not in known for k in raw_kinds):
        raise fail(f"kinds must be a list of {', '.join(known)}")
    if len(set(raw_kinds)) != len(raw_kinds):
        raise fail("a kind is listed twice")
    n = len(raw_kinds)
    numbers = {}
    for key in ("bias", "sure", "unsure"):
        value = data.get(key)
        if not isinstance(value, list) or len(value) != n or not all(isinstance(v, int | float) for v in value):
            raise fail(f"{key} must be a list of {n} numbers, one per kind")
        numbers[key] = tuple(float(v) for v in value)
    for kind, low, high in zip(raw_kinds, numbers["unsure"], numbers["sure"], strict=True):
        if not 0.0 < low <= high <= 1.0:
            raise fail(f"thresholds of {kind}: need 0 < unsure ({low}) <= sure ({high}) <= 1")
    vocabulary = data.get("vocabulary")
    weights = data.get("weights")
    if not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
        raise fail("vocabulary must be a list of feature names")
    if len(set(vocabulary)) != len(vocabulary):
        raise fail("a feature is listed twice in vocabulary")
    if not isinstance(weights, list) or len(weights) != len(vocabulary) * n or not all(
            isinstance(w, int) for w in weights):
        raise fail(f"weights must be {len(vocabulary)} x {n} integers (feature-major)")
    return Model(
        kinds=tuple(known[k] for k in raw_kinds), bias=numbers["bias"], sure=numbers["sure"],
        unsure=numbers["unsure"], index={name: i for i, name in enumerate(vocabulary)},
        weights=array("f", (w / WEIGHT_SCALE for w in weights)), source=source,
        trained_on=str(data.get("trained_on", "")),
    )
