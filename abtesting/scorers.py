"""Scorers for offline evaluation: each takes an output (and what the case expects) and returns a
score in [0, 1]. Plain values in and out; a suite names the scorers it uses and their weights."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curation.scoring import ERROR_RE, PLACEHOLDER_RE

_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


@dataclass(frozen=True)
class Case:
    expected: str = ""
    keywords: Sequence[str] = ()
    expects_json: bool = False
    length: tuple[int, int] | None = None  # acceptable words (low, high); None: judged from `expected`
    number_tolerance: float = 0.0  # JSON fields: numbers match when |got - expected| <= this x max(1, |expected|)


def _normalize(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def exact_match(output: str, case: Case) -> float:
    return float(output.strip() == case.expected.strip())


def normalized_match(output: str, case: Case) -> float:
    return float(_normalize(output) == _normalize(case.expected))


def keyword_coverage(output: str, case: Case) -> float:
    if not case.keywords:
        return 1.0
    text = _normalize(output)
    return sum(_normalize(k) in text for k in case.keywords) / len(case.keywords)


def length_appropriateness(output: str, case: Case) -> float:
    """1 inside the acceptable word range; falls off linearly to 0 at half or twice its bounds."""
    words = len(output.split())
    low, high = case.length or (max(1, len(case.expected.split()) // 2), max(3, 2 * len(case.expected.split())))
    if low <= words <= high:
        return 1.0
    if words < low:
        return max(0.0, (words - low / 2) / (low / 2)) if low else 0.0
    return max(0.0, 1 - (words - high) / high)


def no_placeholders(output: str, case: Case) -> float:
    return 0.0 if PLACEHOLDER_RE.search(output) else 1.0


def no_error_text(output: str, case: Case) -> float:
    return 0.0 if ERROR_RE.search(output) else 1.0


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_MISSING = object()


def parse_json(text: str) -> Any:
    """The JSON value of a text (a fenced ```json block is accepted), or _MISSING."""
    try:
        return json.loads(_FENCE.sub("", text.strip()))
    except ValueError:
        return _MISSING


def formatting(output: str, case: Case) -> float:
    """Valid JSON when the case expects JSON (fenced ```json blocks are accepted); else 1."""
    if not case.expects_json:
        return 1.0
    return 0.0 if parse_json(output) is _MISSING else 1.0


def is_json_target(expected: str) -> bool:
    """An expected answer that is a JSON object or array (what field-by-field scoring needs)."""
    return isinstance(parse_json(expected), dict | list)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def field_score(expected: Any, got: Any, tolerance: float = 0.0) -> float:
    """Objects: the mean over the union of both key sets (a missing or an extra field scores 0),
    each field scored recursively; arrays: position by position over the longer one; numbers
    within the tolerance (1 and 1.0 are equal); anything else equal and of the same type."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return 0.0
        keys = set(expected) | set(got)
        return sum(field_score(expected[k], got[k], tolerance) for k in expected if k in got) / len(keys) if keys else 1.0
    if isinstance(expected, list):
        if not isinstance(got, list):
            return 0.0
        size = max(len(expected), len(got))
        return sum(field_score(e, g, tolerance) for e, g in zip(expected, got, strict=False)) / size if size else 1.0
    if _is_number(expected) and _is_number(got):
        return float(abs(got - expected) <= tolerance * max(1.0, abs(expected)))
    return float(type(expected) is type(got) and expected == got)


def json_fields(output: str, case: Case) -> float:
    """Field by field against a JSON expected answer (see field_score); an answer that is not
    valid JSON scores 0. A case whose expected answer is not JSON falls back to normalized match."""
    expected = parse_json(case.expected)
    if expected is _MISSING:
        return normalized_match(output, case)
    got = parse_json(output)
    return 0.0 if got is _MISSING else field_score(expected, got, case.number_tolerance)


def chrf(output: str, case: Case, *, max_n: int = 6, beta: float = 2.0) -> float:
    """Reference similarity: chrF (character n-gram F-score, n = 1..6, recall weighted by beta)."""
    hypothesis, reference = _SPACE.sub(" ", output.strip()), _SPACE.sub(" ", case.expected.strip())
    if not reference:
        return 1.0 if not hypothesis else 0.0
    precisions, recalls = [], []
    for n in range(1, max_n + 1):
        hyp = Counter(hypothesis[i : i + n] for i in range(len(hypothesis) - n + 1))
        ref = Counter(reference[i : i + n] for i in range(len(reference) - n + 1))
        if not hyp or not ref:
            continue
        overlap = sum((hyp & ref).values())
        precisions.append(overlap / sum(hyp.values()))
        recalls.append(overlap / sum(ref.values()))
    if not precisions:
        return 0.0
    p, r = sum(precisions) / len(precisions), sum(recalls) / len(recalls)
    return 0.0 if p + r == 0 else (1 + beta**2) * p * r / (beta**2 * p + r)


SCORERS: dict[str, Callable[[str, Case], float]] = {
    "exact_match": exact_match,
    "normalized_match": normalized_match,
    "keyword_coverage": keyword_coverage,
    "length": length_appropriateness,
    "no_placeholders": no_placeholders,
    "formatting": formatting,
    "no_error_text": no_error_text,
    "reference_similarity": chrf,
    "json_fields": json_fields,
}
# the scorers that say whether an answer is right (1) rather than how close it comes
CORRECTNESS = ("json_fields", "exact_match", "normalized_match")


@dataclass(frozen=True)
class Scored:
    total: float
    parts: dict[str, float] = field(default_factory=dict)


def score(output: str, case: Case, weights: Mapping[str, float]) -> Scored:
    """The weighted mean of the named scorers, with each one's score."""
    unknown = set(weights) - set(SCORERS)
    if unknown:
        raise ValueError(f"unknown scorers: {', '.join(sorted(unknown))}")
    parts = {name: round(SCORERS[name](output, case), 4) for name in weights}
    total = sum(weights.values())
    return Scored(round(sum(parts[n] * w for n, w in weights.items()) / total, 4) if total else 0.0, parts)
