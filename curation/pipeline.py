"""From one interaction and its feedback to the examples it yields: the pure part of curation.

`examples_for` turns a plain view of an interaction into scrubbed, scored example rows; the
curation service (services/runs.py) feeds it from the database in chunks, then deduplicates.

What becomes an example:
- SFT: a correction (the corrected text is the target: human-validated), or a score >= the
  task's min_score, a thumb up, or a staff approval (the output is the target);
- preference pairs: a choice among candidates (chosen vs each other candidate), and a
  correction (corrected = chosen, original output = rejected);
- binary (KTO): the majority of ratings (score >= 4 or thumb up: desirable; score <= 2 or thumb
  down: undesirable; ties and neutral scores yield nothing), the output as completion.
Opted-out subjects and flagged interactions yield nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import dedup, pii, scoring


@dataclass(frozen=True)
class FeedbackView:
    kind: str
    source: str = "user"
    score: int | None = None
    thumb: str = ""
    correction: str = ""
    candidate_rank: int | None = None


@dataclass(frozen=True)
class InteractionView:
    id: Any
    task: str
    messages: Sequence[Mapping[str, str]]
    output_text: str
    confidence: float | None = None
    reasoning: str = ""
    category: str = ""
    feedback: Sequence[FeedbackView] = ()
    candidates: Mapping[int, str] = field(default_factory=dict)  # rank -> text
    opted_out: bool = False
    approved_keys: frozenset[str] = frozenset()  # examples a reviewer approved (staff approval)
    rejected_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Config:
    min_score: int = 4
    tiers: Mapping[str, float] = field(default_factory=lambda: dict(scoring.DEFAULT_TIERS))
    weights: Mapping[str, float] = field(default_factory=lambda: dict(scoring.DEFAULT_WEIGHTS))
    requires_reasoning: bool = False


@dataclass
class ExampleRow:
    key: str
    kind: str
    origin: str
    prompt: list[dict[str, str]]
    target: str
    rejected: str
    label: bool | None
    score: scoring.Score
    content_hash: str
    pii_found: dict[str, int]
    token_count: int


def prompt_text(prompt: Sequence[Mapping[str, str]]) -> str:
    """What the user side of a prompt says (system and user turns): hashed, deduplicated, counted."""
    return " ".join(m["content"] for m in prompt if m["role"] != "assistant")


def skip_reason(view: InteractionView) -> str | None:
    if view.opted_out:
        return "opted_out"
    if any(f.kind == "flag" for f in view.feedback):
        return "flagged"
    return None


def _ratings(view: InteractionView) -> tuple[list[int], list[bool]]:
    scores = [f.score for f in view.feedback if f.kind == "score" and f.score is not None]
    thumbs = [f.thumb == "up" for f in view.feedback if f.kind == "thumb" and f.thumb]
    return scores, thumbs


def _majority_label(scores: list[int], thumbs: list[bool]) -> bool | None:
    votes = [s >= 4 for s in scores if s != 3] + thumbs
    positive, negative = votes.count(True), votes.count(False)
    if positive == negative:
        return None
    return positive > negative


def _scrub_messages(messages: Sequence[Mapping[str, str]], found: Counter[str]) -> list[dict[str, str]]:
    clean = []
    for message in messages:
        text, counts = pii.scrub(message["content"])
        found.update(counts)
        clean.append({"role": message["role"], "content": text})
    return clean


def _specs(view: InteractionView, config: Config) -> list[tuple[str, str, str, str, bool | None, dict[str, Any]]]:
    """(kind, origin, target, rejected, label, signal overrides) of each example, unscrubbed."""
    specs: list[tuple[str, str, str, str, bool | None, dict[str, Any]]] = []
    scores, thumbs = _ratings(view)
    corrections = [f.correction for f in view.feedback if f.kind == "correction" and f.correction.strip()]
    staff_positive = any(f.source == "staff" and ((f.score or 0) >= config.min_score or f.thumb == "up") for f in view.feedback)
    if corrections:
        specs.append(("sft", "correction", corrections[-1], "", None, {"corrected": True}))
        if view.output_text.strip() and dedup.normalize(view.output_text) != dedup.normalize(corrections[-1]):
            specs.append(("preference", "correction", corrections[-1], view.output_text, None, {"corrected": True}))
    elif any(s >= config.min_score for s in scores) or any(thumbs) or staff_positive:
        specs.append(("sft", "output", view.output_text, "", None, {"staff_approved": staff_positive}))
    choices = [f.candidate_rank for f in view.feedback if f.kind == "choice" and f.candidate_rank in view.candidates]
    if choices:
        chosen = choices[-1]
        for rank, text in sorted(view.candidates.items()):
            if rank != chosen and text.strip() and dedup.normalize(text) != dedup.normalize(view.candidates[chosen]):
                specs.append(("preference", f"choice-r{rank}", view.candidates[chosen], text, None, {"chose": True}))
    label = _majority_label(scores, thumbs)
    if label is not None and view.output_text.strip():
        specs.append(("binary", "rating", view.output_text, "", label, {"negative_label": not label}))
    return specs


def examples_for(view: InteractionView, config: Config) -> list[ExampleRow]:
    """The examples one interaction yields, scrubbed and scored. Empty when skipped."""
    if skip_reason(view):
        return []
    scores, thumbs = _ratings(view)
    rows = []
    for kind, origin, target, rejected, label, overrides in _specs(view, config):
        key = f"{view.id}:{kind}:{origin}"
        found: Counter[str] = Counter()
        prompt = _scrub_messages(view.messages, found)
        clean_target, counts = pii.scrub(target)
        found.update(counts)
        clean_rejected, counts = pii.scrub(rejected)
        found.update(counts)
        signals = scoring.Signals(
            scores=scores,
            thumbs=thumbs,
            confidence=view.confidence,
            has_reasoning=bool(view.reasoning.strip()),
            reasoning_required=config.requires_reasoning,
            **{"staff_approved": key in view.approved_keys, **overrides},
        )
        result = scoring.score(signals, clean_target, weights=config.weights, tiers=config.tiers, check_sanity=label is not False)
        if key in view.approved_keys:  # a reviewer's approval makes it gold
            result = scoring.Score(max(result.quality, config.tiers["gold"]), "gold", {**result.breakdown, "review": "approved"})
        elif key in view.rejected_keys:
            result = scoring.Score(result.quality, "reject", {**result.breakdown, "review": "rejected"})
        user_text = prompt_text(prompt)
        rows.append(
            ExampleRow(
                key=key,
                kind=kind,
                origin=origin,
                prompt=prompt,
                target=clean_target,
                rejected=clean_rejected,
                label=label if kind == "binary" else None,
                score=result,
                content_hash=dedup.content_hash(kind, user_text, clean_target, clean_rejected),
                pii_found=dict(found),
                token_count=(len(user_text) + len(clean_target) + len(clean_rejected)) // 4,
            )
        )
    return rows
