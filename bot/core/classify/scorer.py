"""The sorter's model as a value: per-kind linear weights over `features`, and the confidence
thresholds calibrated when it was trained (`privacy-bot sorter train`).

The shell reads the model file (`bot.settings.load_model`) and hands the parsed data to
`model_from_data`; `Model.scores` is pure, deterministic and takes well under a millisecond per
kilobyte of text. A kind is *sure* at or above its `sure` threshold, *unsure* between `unsure` and
`sure` (the mail then goes to staff with the guesses shown), and not asked for below.
"""

from __future__ import annotations

import base64
import binascii
import math
import sys
import zlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.classify.features import FEATURES_VERSION
from bot.core.errors import ConfigError
from bot.core.model import Kind

MODEL_FORMAT = "privacy-bot-sorter"
MODEL_VERSION = 2  # 2: weights packed (see pack_weights); 1 listed them as JSON numbers
WEIGHT_SCALE = 1000  # weights are stored as integers: round(weight * WEIGHT_SCALE)


@dataclass(frozen=True)
class Model:
    kinds: tuple[Kind, ...]
    bias: tuple[float, ...]
    sure: tuple[float, ...]  # per kind: at or above, the sorter is sure
    unsure: tuple[float, ...]  # per kind: at or above (and below sure), it is unsure
    index: Mapping[str, int]  # feature -> row in weights
    weights: array  # type: ignore[type-arg]  # row-major, len(index) * len(kinds) integers, WEIGHT_SCALE times the weight
    source: str = ""
    trained_on: str = ""  # what it was trained from, for people

    def scores(self, feats: Mapping[str, float]) -> dict[Kind, float]:
        """The probability of each kind for these features."""
        n = len(self.kinds)
        sums = [0.0] * n
        weights, index = self.weights, self.index
        for name, value in feats.items():
            row = index.get(name)
            if row is None:
                continue
            base = row * n
            for k in range(n):
                sums[k] += weights[base + k] * value
        return {kind: _sigmoid(b + s / WEIGHT_SCALE) for kind, b, s in zip(self.kinds, self.bias, sums, strict=True)}

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
    if not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary):
        raise fail("vocabulary must be a list of feature names")
    if len(set(vocabulary)) != len(vocabulary):
        raise fail("a feature is listed twice in vocabulary")
    try:
        weights = unpack_weights(data.get("weights"))
    except (TypeError, ValueError, zlib.error, binascii.Error):
        raise fail("weights must be the packed integers (zlib, then base64) of `sorter train`") from None
    if len(weights) != len(vocabulary) * n:
        raise fail(f"weights must be {len(vocabulary)} x {n} integers (feature-major), got {len(weights)}")
    return Model(
        kinds=tuple(known[k] for k in raw_kinds), bias=numbers["bias"], sure=numbers["sure"],
        unsure=numbers["unsure"], index={name: i for i, name in enumerate(vocabulary)},
        weights=weights, source=source,
        trained_on=str(data.get("trained_on", "")),
    )


def pack_weights(weights: list[int]) -> str:
    """The model file's weights: 32-bit little-endian integers, zlib-compressed, base64 (a few hundred
    thousand features x 7 kinds load in milliseconds, where a JSON list of numbers takes a second)."""
    raw = array("i", weights)
    if sys.byteorder == "big":
        raw.byteswap()
    return base64.b64encode(zlib.compress(raw.tobytes(), 9)).decode("ascii")


def unpack_weights(packed: object) -> array:  # type: ignore[type-arg]
    if not isinstance(packed, str):
        raise TypeError("weights are not a packed string")
    raw = array("i")
    raw.frombytes(zlib.decompress(base64.b64decode(packed.encode("ascii"), validate=True)))
    if sys.byteorder == "big":
        raw.byteswap()
    return raw
