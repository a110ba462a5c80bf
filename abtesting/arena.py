"""The arena: a candidate against the champion on the same cases. Plain values in and out.

Per case the winner is the one with the higher combined score = quality_weight x quality +
speed_weight x speed, where speed = the faster latency / this latency (1 for the faster one).
The candidate passes when it wins more cases than it loses AND loses no category's mean quality
by more than `margin` (a regression check a good mean cannot hide).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Verdict:
    passed: bool
    wins: int
    losses: int
    ties: int
    per_case: list[dict[str, Any]] = field(default_factory=list)
    regressions: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def _speed(latency: float, other: float) -> float:
    if latency <= 0 or other <= 0:
        return 1.0
    return min(latency, other) / latency


def compare(
    candidate: Sequence[Mapping[str, Any]],
    champion: Sequence[Mapping[str, Any]],
    *,
    quality_weight: float = 0.7,
    speed_weight: float = 0.3,
    margin: float = 0.05,
    tie_within: float = 1e-6,
) -> Verdict:
    """Rows are per-case results {id, category, score, latency_ms} of the same cases."""
    champion_by_id = {row["id"]: row for row in champion}
    wins = losses = ties = 0
    per_case = []
    quality: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row in candidate:
        other = champion_by_id[row["id"]]
        mine = quality_weight * row["score"] + speed_weight * _speed(row["latency_ms"], other["latency_ms"])
        theirs = quality_weight * other["score"] + speed_weight * _speed(other["latency_ms"], row["latency_ms"])
        winner = "tie" if abs(mine - theirs) <= tie_within else ("candidate" if mine > theirs else "champion")
        wins, losses, ties = wins + (winner == "candidate"), losses + (winner == "champion"), ties + (winner == "tie")
        per_case.append(
            {"id": row["id"], "category": row["category"], "winner": winner, "candidate": round(mine, 4), "champion": round(theirs, 4)}
        )
        quality[row["category"]].append((row["score"], other["score"]))
    regressions = {}
    for category, pairs in quality.items():
        drop = sum(theirs - mine for mine, theirs in pairs) / len(pairs)
        if drop > margin:
            regressions[category] = round(drop, 4)
    passed = wins > losses and not regressions
    reason = f"won {wins}, lost {losses}, tied {ties}" + (
        f"; regressed in {', '.join(f'{c} (-{d:.2f})' for c, d in sorted(regressions.items()))}" if regressions else ""
    )
    return Verdict(passed, wins, losses, ties, per_case, regressions, reason)
