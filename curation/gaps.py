"""Knowledge gaps: low-confidence queries clustered by word overlap. Plain values in and out."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

_WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "do",
        "does",
        "did",
        "how",
        "what",
        "why",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "can",
        "could",
        "should",
        "would",
        "will",
        "i",
        "you",
        "he",
        "she",
        "it",
        "we",
        "they",
        "me",
        "my",
        "your",
        "our",
        "their",
        "this",
        "that",
        "these",
        "those",
        "not",
        "no",
        "yes",
        "please",
        "about",
        "into",
        "as",
        "so",
        "than",
        "too",
        "very",
        "just",
    ]
)


@dataclass
class Gap:
    representative: str
    members: list[Hashable] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.members)


def terms(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in STOPWORDS and len(w) > 1)


def _similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def cluster(queries: Sequence[tuple[Hashable, str]], *, threshold: float = 0.3, max_examples: int = 5) -> list[Gap]:
    """Greedy single pass: a query joins the most similar cluster (Jaccard of content words
    against the cluster's first query) at or above `threshold`, or starts a new one. The
    representative is the member sharing the most words with the others. Largest first."""
    seeds: list[tuple[frozenset[str], Gap]] = []
    for key, text in queries:
        words = terms(text)
        best, best_score = None, threshold
        for seed_words, gap in seeds:
            score = _similarity(words, seed_words)
            if score >= best_score:
                best, best_score = gap, score
        if best is None:
            best = Gap(representative=text)
            seeds.append((words, best))
        best.members.append(key)
        best.texts.append(text)
    gaps = [gap for _, gap in seeds]
    for gap in gaps:
        gap.representative = representative(gap.texts)
        gap.texts = gap.texts[:max_examples]
    return sorted(gaps, key=lambda g: -g.size)


def representative(texts: Sequence[str], *, sample: int = 50) -> str:
    """The text among the first `sample` sharing the most words with the others (erasure uses it
    to rebuild a gap without the erased subject's queries); '' for none."""
    chosen = list(texts[:sample])
    bags = [terms(t) for t in chosen]
    return max(chosen, key=lambda t: sum(_similarity(terms(t), b) for b in bags), default="")
