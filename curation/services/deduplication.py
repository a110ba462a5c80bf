"""The deduplication stage of a curation run: exact duplicates, then near duplicates judged on
the prompt and the answer apart (curation/dedup.py); conflicts stored for review."""

from __future__ import annotations

from collections import Counter

from learning_platform.db import bulk_set

from .. import dedup
from ..models import TrainingExample
from ..pipeline import prompt_text
from .config import config_for
from .conflicts import conflicts_agreed, conflicts_sync

# binary examples are judged per label: a desirable and an undesirable answer to one prompt are
# the signal KTO learns from, not a conflict
PARTS = [("sft", None), ("preference", None), ("binary", True), ("binary", False)]


def task_deduplicate(*, task: str, counts: Counter[str]) -> None:
    """Mark exact, then near duplicates among a task's usable examples (per kind): the
    highest-quality example of each cluster stays, the others point to it. Of two examples that
    answer near-identical prompts in contradicting ways, a conflict is stored and the worse one
    points to the better (held out of datasets) unless the task's config keeps both. Rows are
    streamed and texts loaded only for the near-duplicate pass, one kind at a time."""
    config = config_for(task)[1]
    usable = TrainingExample.objects.filter(task=task).exclude(tier="reject")
    current: dict[int, int | None] = {}
    keys = []
    for pk, key, kind, digest, quality, duplicate_of in usable.values_list(
        "id", "key", "kind", "content_hash", "quality_score", "duplicate_of_id"
    ).iterator(chunk_size=20_000):
        current[pk] = duplicate_of
        keys.append((pk, f"{kind}:{digest}", quality, key))  # the example's key breaks ties, not its pk
    wanted: dict[int, int] = dedup.exact_duplicates(keys)
    del keys
    counts["duplicates_exact"] += len(wanted)
    agreed = conflicts_agreed(task=task)
    found: list[tuple[str, dedup.Conflict]] = []
    for kind, label in PARTS:
        part = usable.filter(kind=kind) if label is None else usable.filter(kind=kind, label=label)
        rows = part.values_list("id", "key", "quality_score", "prompt", "target").iterator(chunk_size=20_000)
        items = [dedup.Item(pk, prompt_text(prompt), quality, key, target) for pk, key, quality, prompt, target in rows if pk not in wanted]
        judgement = dedup.judge_near_duplicates(items, threshold=config.near_duplicate_threshold, agreed=agreed)
        counts["duplicates_near"] += len(judgement.duplicates)
        counts["contrast_kept"] += judgement.contrast_kept
        counts["conflicts"] += len(judgement.conflicts)
        wanted.update(judgement.duplicates)
        if config.hold_out_conflicts:
            counts["conflicts_held_out"] += len(judgement.held_out)
            wanted.update(judgement.held_out)
        found += [(kind, conflict) for conflict in judgement.conflicts]
    bulk_set(TrainingExample, "duplicate_of_id", {pk: wanted.get(pk) for pk, was in current.items() if wanted.get(pk) != was})
    # examples that became `reject` keep no duplicate links
    TrainingExample.objects.filter(task=task, tier="reject", duplicate_of__isnull=False).update(duplicate_of=None)
    conflicts_sync(task=task, found=found)
