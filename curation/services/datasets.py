"""Datasets: a draft names what to take; freezing snapshots it, split and hashed, for good."""

from __future__ import annotations

import hashlib
import random
from collections import Counter, defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from interactions.models import Interaction
from learning_platform.db import fast_insert

from .. import balance as balancing
from ..models import TIERS, Dataset, DatasetItem, TrainingExample
from .errors import CurationError

BALANCE_KEYS = {"label": lambda e: e.label, "category": lambda e: e.category, "label+category": lambda e: (e.label, e.category)}


def _check_filters(kind: str, min_tier: str, eval_ratio: float, max_size: int | None, balance: str) -> None:
    errors: dict[str, list[str]] = {}
    if kind not in TrainingExample.Kind.values:
        errors["kind"] = [f"Must be one of {', '.join(TrainingExample.Kind.values)}."]
    if min_tier not in TIERS[:3]:
        errors["min_tier"] = ["Must be gold, silver or bronze."]
    if not 0 <= eval_ratio < 1:
        errors["eval_ratio"] = ["Must be at least 0 and below 1."]
    if max_size is not None and max_size < 1:
        errors["max_size"] = ["Must be a positive number."]
    if balance and balance not in BALANCE_KEYS:
        errors["balance"] = [f"Must be one of {', '.join(BALANCE_KEYS)} or empty."]
    if errors:
        raise CurationError("The dataset filters are invalid.", fields=errors)


def dataset_create(
    *,
    task: str,
    kind: str = "sft",
    name: str = "default",
    min_tier: str = "silver",
    categories: list[str] | None = None,
    max_size: int | None = None,
    balance: str = "",
    eval_ratio: float = 0.1,
    seed: int = 0,
    created_by: str = "",
) -> Dataset:
    """A draft dataset: the filters, a version number, no items yet."""
    _check_filters(kind, min_tier, eval_ratio, max_size, balance)
    filters = {
        "min_tier": min_tier,
        "categories": categories or [],
        "max_size": max_size,
        "balance": balance,
        "eval_ratio": eval_ratio,
        "seed": seed,
    }
    with transaction.atomic():
        return Dataset.objects.create(
            task=task, name=name, version=_next_version(task, name), kind=kind, filters=filters, created_by=created_by
        )


def _next_version(task: str, name: str) -> int:
    return (Dataset.objects.select_for_update().filter(task=task, name=name).aggregate(v=Max("version"))["v"] or 0) + 1


def _selected(dataset: Dataset) -> list[TrainingExample]:
    f = dataset.filters
    tiers = TIERS[: TIERS.index(f["min_tier"]) + 1]
    queryset = TrainingExample.objects.filter(task=dataset.task, kind=dataset.kind, tier__in=tiers, duplicate_of__isnull=True)
    queryset = queryset.exclude(review_status=TrainingExample.Review.REJECTED).exclude(source_interaction__subject__opted_out=True)
    if f["categories"]:
        queryset = queryset.filter(category__in=f["categories"])
    examples = list(queryset.order_by("-quality_score", "id"))
    if f["balance"]:
        examples = balancing.balance(examples, group=BALANCE_KEYS[f["balance"]], quality=lambda e: e.quality_score, seed=f["seed"])
        examples.sort(key=lambda e: (-e.quality_score, e.id))
    return examples[: f["max_size"]] if f["max_size"] else examples


def _split(examples: list[TrainingExample], ratio: float, seed: int, kind: str) -> dict[int, str]:
    """Stratified (by label for binary, else by category) and seeded: the same call, the same split."""
    strata: dict[Any, list[TrainingExample]] = defaultdict(list)
    for example in examples:
        strata[example.label if kind == "binary" else example.category].append(example)
    rng = random.Random(seed)  # noqa: S311  (a reproducible split, not security)
    splits = {}
    for name in sorted(strata, key=repr):
        members = sorted(strata[name], key=lambda e: e.id)
        rng.shuffle(members)
        eval_count = round(len(members) * ratio) if len(members) > 1 else 0
        for index, example in enumerate(members):
            splits[example.id] = DatasetItem.Split.EVAL if index < eval_count else DatasetItem.Split.TRAIN
    return splits


def _stats(items: list[dict[str, Any]]) -> dict[str, Any]:
    tokens = [i["token_count"] for i in items]
    return {
        "count": len(items),
        "splits": dict(Counter(i["split"] for i in items)),
        "tiers": dict(Counter(i["tier"] for i in items)),
        "kinds": dict(Counter(i["kind"] for i in items)),
        "categories": dict(Counter(i["category"] or "(none)" for i in items)),
        "labels": dict(Counter(str(i["label"]).lower() for i in items if i["label"] is not None)),
        "tokens": {"total": sum(tokens), "mean": round(sum(tokens) / len(tokens), 1) if tokens else 0, "max": max(tokens, default=0)},
        "average_quality": round(sum(i["quality_score"] for i in items) / len(items), 4) if items else 0,
    }


def manifest_hash(items: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for item in sorted(items, key=lambda i: (i["split"], i["position"])):
        digest.update(f"{item['split']}:{item['position']}:{item['content_hash']}:{item['label']}\n".encode())
    return digest.hexdigest()


@transaction.atomic
def dataset_freeze(*, dataset: Dataset, frozen_by: str = "") -> Dataset:
    """Snapshot the examples the draft's filters select, split them, hash the manifest, freeze."""
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if dataset.status == Dataset.Status.FROZEN:
        raise CurationError(f"Dataset {dataset} is already frozen.", code="conflict")
    examples = _selected(dataset)
    if not examples:
        raise CurationError(
            f"No {dataset.kind} examples of task {dataset.task!r} match the filters.", fields={"filters": [str(dataset.filters)]}
        )
    splits = _split(examples, dataset.filters["eval_ratio"], dataset.filters["seed"], dataset.kind)
    positions: Counter[str] = Counter()
    items = []
    for example in examples:
        split = splits[example.id]
        items.append(
            {
                "dataset_id": dataset.pk, "example_id": example.id, "source_interaction_id": example.source_interaction_id,
                "split": split, "position": positions[split], "kind": example.kind, "category": example.category,
                "prompt": example.prompt, "target": example.target, "rejected": example.rejected, "label": example.label,
                "quality_score": example.quality_score, "tier": example.tier, "content_hash": example.content_hash,
                "token_count": example.token_count,
            }
        )  # fmt: skip
        positions[split] += 1
    return _freeze(dataset, items, frozen_by)


def _freeze(dataset: Dataset, items: list[dict[str, Any]], frozen_by: str) -> Dataset:
    """Insert the snapshot's items, then stats, manifest hash and the frozen status in one update."""
    fast_insert(DatasetItem, items)
    dataset.stats, dataset.manifest_hash = _stats(items), manifest_hash(items)
    dataset.status, dataset.frozen_at, dataset.frozen_by = Dataset.Status.FROZEN, timezone.now(), frozen_by
    Dataset.objects.filter(pk=dataset.pk).update(
        stats=dataset.stats, manifest_hash=dataset.manifest_hash, status=dataset.status, frozen_at=dataset.frozen_at, frozen_by=frozen_by
    )
    return dataset


def dataset_freeze_new(*, frozen_by: str = "", **filters: Any) -> Dataset:
    """Create a draft and freeze it in one step (the command, the weekly training task)."""
    with transaction.atomic():
        dataset = dataset_create(created_by=frozen_by, **filters)
        return dataset_freeze(dataset=dataset, frozen_by=frozen_by)


ITEM_FIELDS = (
    "example_id", "source_interaction_id", "split", "kind", "category", "prompt", "target", "rejected", "label",
    "quality_score", "tier", "content_hash", "token_count",
)  # fmt: skip


@transaction.atomic
def dataset_derive(*, source: Dataset, created_by: str = "") -> Dataset:
    """A new frozen version of `source` (same task and name, the next number, `parent` = source)
    holding the items it still has: an erasure removed some, and items of subjects who opted out
    since are left out too. Splits are kept, positions renumbered. The source's row lock orders
    this against an erasure that is removing items from it (curation/services/erasure.py)."""
    source = Dataset.objects.select_for_update().get(pk=source.pk)
    live = Interaction.objects.exclude(subject__opted_out=True).values("id")
    kept = DatasetItem.objects.filter(dataset=source, source_interaction_id__in=live).order_by("split", "position")
    rows = list(kept.values(*ITEM_FIELDS))
    if not rows:
        raise CurationError(f"Dataset {source} holds no items any more: nothing to derive.", code="conflict")
    dataset = Dataset.objects.create(
        task=source.task, name=source.name, version=_next_version(source.task, source.name), kind=source.kind,
        filters=source.filters, parent=source, created_by=created_by,
    )  # fmt: skip
    positions: Counter[str] = Counter()
    for row in rows:
        row["dataset_id"], row["position"] = dataset.pk, positions[row["split"]]
        positions[row["split"]] += 1
    return _freeze(dataset, rows, created_by)


def datasets_restat(*, dataset_ids: list[int]) -> int:
    """Recompute the stats of datasets that lost items (an erasure); the manifest hash stays the
    record of what was frozen. A queryset update: the one change a frozen dataset takes besides
    its tainted flag."""
    for dataset_id in dataset_ids:
        rows = list(DatasetItem.objects.filter(dataset_id=dataset_id).values("split", "tier", "kind", "category", "label",
                                                                               "token_count", "quality_score"))  # fmt: skip
        before = Dataset.objects.filter(pk=dataset_id).values_list("stats", flat=True).first() or {}
        frozen = before.get("erased", {}).get("frozen_count", before.get("count", len(rows)))
        # what the erasures removed stays visible next to what is left (the manifest keeps the original)
        erased = {"frozen_count": frozen, "items": frozen - len(rows)}
        Dataset.objects.filter(pk=dataset_id).update(stats={**_stats(rows), "erased": erased})
    return len(dataset_ids)
