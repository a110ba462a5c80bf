"""Per-kind recall and precision of a detector on a labelled set (for the tests and benchmarks/pii.py)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .patterns import Match

Span = tuple[str, int, int]


@dataclass
class Tally:
    expected: int = 0
    recalled: int = 0
    found: int = 0
    correct: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.recalled / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.found if self.found else 1.0


def load_jsonl(path: Path) -> list[tuple[str, list[Span]]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(r["text"], [(e["type"], e["start"], e["end"]) for e in r["entities"]]) for r in rows]


def _overlaps(kind: str, start: int, end: int, other: Match | Span) -> bool:
    o_kind, o_start, o_end = (other.kind, other.start, other.end) if isinstance(other, Match) else other
    return kind == o_kind and start < o_end and end > o_start


def evaluate(cases: Iterable[tuple[str, list[Span]]], find: Callable[[str], list[Match]]) -> dict[str, Tally]:
    """A match counts when it overlaps a labelled span of the same kind."""
    tallies: dict[str, Tally] = defaultdict(Tally)
    for text, spans in cases:
        matches = find(text)
        for kind, start, end in spans:
            tally = tallies[kind]
            tally.expected += 1
            if any(_overlaps(kind, start, end, m) for m in matches):
                tally.recalled += 1
            else:
                tally.problems.append(f"missed {kind} {text[start:end]!r} in {text!r}")
        for m in matches:
            tally = tallies[m.kind]
            tally.found += 1
            if any(_overlaps(m.kind, m.start, m.end, span) for span in spans):
                tally.correct += 1
            else:
                tally.problems.append(f"false {m.kind} {text[m.start : m.end]!r} in {text!r}")
    return dict(tallies)
