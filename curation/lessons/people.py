"""Personas and memories as plain values: the update rule, what memories a text yields, and the
preamble the model sees. No Django.

Facets (each in [0, 1], 0.5 when nothing is known):
- concise: the endorsed answer has at most CONCISE_WORDS words;
- step_by_step: it has at least two numbered or bulleted lines;
- code_first: it opens with code (a fenced block within its first 80 characters).

The rule: an answer the person endorsed moves each facet toward that answer's feature (1 or 0)
by a rate that depends on the cause: facet += rate x (feature - facet). A chosen candidate
(rate 0.3) only moves the facets on which it differs from a candidate it was preferred to; a
correction (0.3) and a thumb up (0.15) move every facet toward the endorsed text; a thumb down
(0.15) moves every facet away from the rejected answer (toward 1 - feature). Moves under 0.005
are not recorded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

FACETS = ("concise", "step_by_step", "code_first")
NEUTRAL = 0.5
CONCISE_WORDS = 60
RATES = {"choice": 0.3, "correction": 0.3, "thumb_up": 0.15, "thumb_down": 0.15}
MIN_MOVE = 0.005
_STEP = re.compile(r"^\s*(?:\d+[.)]|[-*\u2022]|step \d+)\s+", re.IGNORECASE | re.MULTILINE)
_GOAL = re.compile(r"\b(?:i want to|i'm trying to|i am trying to|i need to|my goal is(?: to)?|help me)\s+([^.?!\n]{3,120})", re.I)
_PREFERENCE = re.compile(r"\b(?:i prefer|i like|please always|please never|don't|do not)\s+([^.?!\n]{3,120})", re.I)


def features(text: str) -> dict[str, float]:
    stripped = text.strip()
    return {
        "concise": 1.0 if len(stripped.split()) <= CONCISE_WORDS else 0.0,
        "step_by_step": 1.0 if len(_STEP.findall(stripped)) >= 2 else 0.0,
        "code_first": 1.0 if "```" in stripped[:80] else 0.0,
    }


def moves(facets: Mapping[str, float], *, cause: str, endorsed: str, others: Sequence[str] = ()) -> dict[str, tuple[float, float]]:
    """{facet: (before, after)} for the facets this signal moves, by the rule above."""
    rate = RATES[cause]
    target = features(endorsed)
    if cause == "thumb_down":
        target = {name: 1.0 - value for name, value in target.items()}
    moving: Iterable[str] = FACETS
    if cause == "choice":
        differing = [features(text) for text in others]
        moving = [name for name in FACETS if any(f[name] != target[name] for f in differing)]
    changed = {}
    for name in moving:
        before = float(facets.get(name, NEUTRAL))
        after = round(before + rate * (target[name] - before), 4)
        if abs(after - before) >= MIN_MOVE:
            changed[name] = (before, after)
    return changed


def memories_from(prompt: str, *, cause: str) -> list[tuple[str, str]]:
    """(kind, text) the person's request tells about them: goals and stated preferences, and one
    history line saying what they asked about."""
    found = [("goal", _clip(m.group(1))) for m in _GOAL.finditer(prompt)]
    found += [("preference", _clip(m.group(0))) for m in _PREFERENCE.finditer(prompt)]
    verb = {"choice": "chose an answer about", "correction": "corrected an answer about"}.get(cause)
    if verb:
        found.append(("history", f"{verb}: {_clip(prompt, 100)}"))
    return found


def _clip(text: str, size: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1].rstrip() + "\u2026"


def preamble(facets: Mapping[str, float], memories: Sequence[tuple[str, str]], *, max_tokens: int) -> str:
    """What the model is told about the person, within max_tokens (characters / 4), strongest
    facets first, then the most recent memories."""
    budget = max_tokens * 4
    lines = []
    wording = {"concise": "concise answers", "step_by_step": "step-by-step answers", "code_first": "code first"}
    for name in sorted(FACETS, key=lambda n: -abs(facets.get(n, NEUTRAL) - NEUTRAL)):
        value = float(facets.get(name, NEUTRAL))
        if abs(value - NEUTRAL) >= 0.15:
            lines.append(("Prefers " if value > NEUTRAL else "Does not want ") + wording[name] + ".")
    lines += [f"{kind.capitalize()}: {text}" for kind, text in memories]
    head = "About this user:"
    text = head
    for line in lines:
        if len(text) + 1 + len(line) > budget:
            break
        text += "\n" + line
    return "" if text == head else text
