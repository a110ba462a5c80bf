"""The router: among a task's serving routes, pick the version for a request. Plain values.

score = matched_capabilities x priority + 0.5 x trust - latency_penalty - error_penalty

- matched_capabilities: how many of the request's wanted capabilities the route lists;
- priority: 1 (low) to 4 (high), set per route;
- trust: from the version's performance (registry/stats.py), in [0, 1];
- latency_penalty: 0.5 per second of p95 latency, at most 2;
- error_penalty: 2 x error rate.
Ties go to the higher priority, then to the version registered first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Route:
    version: str
    capabilities: frozenset[str]
    priority: int
    trust: float = 0.0
    latency_p95_ms: float | None = None
    error_rate: float = 0.0


def score(route: Route, wanted: frozenset[str]) -> float:
    matched = len(route.capabilities & wanted)
    latency_penalty = min(2.0, 0.5 * (route.latency_p95_ms or 0) / 1000)
    return matched * route.priority + 0.5 * route.trust - latency_penalty - 2 * route.error_rate


def pick(routes: Sequence[Route], wanted: frozenset[str]) -> Route | None:
    if not routes:
        return None
    return max(enumerate(routes), key=lambda pair: (score(pair[1], wanted), pair[1].priority, -pair[0]))[1]
