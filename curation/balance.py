"""Balancing: down-sample every group to the size of the smallest, keeping the best first.

Plain values in, plain values out; deterministic for a given seed (ties in quality are broken
by a seeded shuffle).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")


def balance(items: Sequence[T], *, group: Callable[[T], Hashable], quality: Callable[[T], float], seed: int = 0) -> list[T]:
    """Keep the same number of items from every group (the smallest group's size)."""
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(group(item), []).append(item)
    if len(groups) < 2:
        return list(items)
    size = min(len(members) for members in groups.values())
    rng = random.Random(seed)  # noqa: S311  (reproducible sampling, not security)
    kept: list[T] = []
    for name in sorted(groups, key=repr):
        members = groups[name][:]
        rng.shuffle(members)  # seeded tie-break among equal quality
        members.sort(key=quality, reverse=True)
        kept += members[:size]
    return kept
