"""Quality score of a training example: a documented, weighted mean of the signals present,
gated by output sanity. Plain values in, plain values out (no Django).

Signals, each in [0, 1] (absent signals do not count, the weights of the present ones are
renormalised):

- human_validation: 1.0 for a correction or a staff approval, 0.8 for a user's explicit choice
  among candidates. The strongest signal.
- feedback_score: mean user score mapped 1..5 -> 0..1.
- thumbs: share of thumbs up.
- confidence: the model's own confidence when it answered.
- agreement: how much the ratings agree: the majority's share when there are two or more,
  0.5 for a single uncorroborated rating.
- reasoning: 1.0 when the interaction carries reasoning (counted only for tasks that ask for it).

For a negative binary example (label False) the rating signals are flipped: a thumbs-down is
strong evidence for the label. Sanity gates the target text: empty, a placeholder (`[insert ...]`,
`TODO`, `lorem ipsum`) or error-message text scores 0 (reject); an implausible length halves it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_WEIGHTS: dict[str, float] = {
    "human_validation": 0.40,
    "feedback_score": 0.20,
    "thumbs": 0.15,
    "agreement": 0.15,
    "confidence": 0.10,
    "reasoning": 0.10,
}
DEFAULT_TIERS: dict[str, float] = {"gold": 0.90, "silver": 0.75, "bronze": 0.60}

PLACEHOLDER_RE = re.compile(r"\[\s*insert\b[^\]]*\]|\bTODO\b|\bTBD\b|lorem ipsum|\{\{\s*\w+\s*\}\}|<placeholder>", re.IGNORECASE)
ERROR_RE = re.compile(
    r"Traceback \(most recent call last\)|\b(?:Internal Server Error|Exception|Error):\s|"
    r"\bas an AI language model\b|\bI(?:'m| am) (?:sorry|unable), (?:but )?I can(?:no|')t\b|"
    r"\bstatus code 5\d\d\b|\brate limit exceeded\b|\bcontext length exceeded\b",
    re.IGNORECASE,
)
MIN_CHARS, MAX_CHARS = 2, 20_000


@dataclass(frozen=True)
class Signals:
    scores: Sequence[int] = ()
    thumbs: Sequence[bool] = ()  # True = up
    corrected: bool = False
    staff_approved: bool = False
    chose: bool = False
    confidence: float | None = None
    has_reasoning: bool = False
    reasoning_required: bool = False
    negative_label: bool = False


@dataclass(frozen=True)
class Score:
    quality: float
    tier: str
    breakdown: dict[str, Any] = field(default_factory=dict)


def sanity(text: str) -> tuple[float, list[str]]:
    """1.0 for a plausible answer; 0 with the reasons when it is empty, a placeholder or an error."""
    stripped = text.strip()
    problems = []
    if not stripped:
        return 0.0, ["empty"]
    if PLACEHOLDER_RE.search(stripped):
        problems.append("placeholder")
    if ERROR_RE.search(stripped):
        problems.append("error text")
    if problems:
        return 0.0, problems
    if not MIN_CHARS <= len(stripped) <= MAX_CHARS:
        return 0.5, ["implausible length"]
    return 1.0, []


def _rating_values(signals: Signals) -> tuple[list[float], list[float]]:
    scores = [(s - 1) / 4 for s in signals.scores]
    thumbs = [1.0 if t else 0.0 for t in signals.thumbs]
    if signals.negative_label:
        scores, thumbs = [1 - s for s in scores], [1 - t for t in thumbs]
    return scores, thumbs


def _agreement(scores: list[float], thumbs: list[float]) -> float | None:
    votes = [v > 0.5 for v in scores + thumbs if v != 0.5]
    if not votes:
        return None
    if len(votes) == 1:
        return 0.5
    return max(votes.count(True), votes.count(False)) / len(votes)


def signal_values(signals: Signals) -> dict[str, float]:
    """The value of each signal that is present."""
    values: dict[str, float] = {}
    if signals.corrected or signals.staff_approved:
        values["human_validation"] = 1.0
    elif signals.chose:
        values["human_validation"] = 0.8
    scores, thumbs = _rating_values(signals)
    if scores:
        values["feedback_score"] = sum(scores) / len(scores)
    if thumbs:
        values["thumbs"] = sum(thumbs) / len(thumbs)
    agreement = _agreement(scores, thumbs)
    if agreement is not None:
        values["agreement"] = agreement
    if signals.confidence is not None and not signals.negative_label:
        values["confidence"] = signals.confidence
    if signals.reasoning_required:
        values["reasoning"] = 1.0 if signals.has_reasoning else 0.0
    return values


def tier_for(quality: float, tiers: Mapping[str, float] = DEFAULT_TIERS) -> str:
    for name in ("gold", "silver", "bronze"):
        if quality >= tiers[name]:
            return name
    return "reject"


def score(
    signals: Signals,
    target: str,
    *,
    weights: Mapping[str, float] = DEFAULT_WEIGHTS,
    tiers: Mapping[str, float] = DEFAULT_TIERS,
    check_sanity: bool = True,
) -> Score:
    """Score one example. `target` is the text the model would learn to produce."""
    values = signal_values(signals)
    present = {name: weights.get(name, 0.0) for name in values if weights.get(name, 0.0) > 0}
    total = sum(present.values())
    mean = sum(values[n] * w for n, w in present.items()) / total if total else 0.0
    gate, problems = sanity(target) if check_sanity else (1.0, [])
    quality = round(mean * gate, 4)
    breakdown = {
        "signals": {n: {"value": round(values[n], 4), "weight": present.get(n, 0.0)} for n in values},
        "weighted_mean": round(mean, 4),
        "sanity": gate,
        "sanity_problems": problems,
    }
    return Score(quality=quality, tier=tier_for(quality, tiers), breakdown=breakdown)
