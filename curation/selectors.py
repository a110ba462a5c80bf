"""Reads of the curation app."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet

from . import exporters
from .models import CurationRun, Dataset, DatasetItem, DuplicateConflict, KnowledgeGap
from .services.errors import CurationError

SPLITS = ("train", "eval", "all")
ITEM_FIELDS = ("kind", "category", "prompt", "target", "rejected", "label", "quality_score", "tier", "split", "position")


def run_get(*, run_id: Any) -> CurationRun:
    run = CurationRun.objects.filter(pk=run_id).first() if str(run_id).isdigit() else None
    if run is None:
        raise CurationError("No such curation run.", code="not_found")
    return run


def dataset_list(*, task: str = "") -> QuerySet[Dataset]:
    queryset = Dataset.objects.all()
    return queryset.filter(task=task) if task else queryset


def dataset_get(*, dataset_id: Any) -> Dataset:
    dataset = Dataset.objects.filter(pk=dataset_id).first() if str(dataset_id).isdigit() else None
    if dataset is None:
        raise CurationError("No such dataset.", code="not_found")
    return dataset


def dataset_items(*, dataset: Dataset, split: str = "all") -> Iterator[dict[str, Any]]:
    """A dataset's items in a stable order, read in chunks (for exports and training)."""
    queryset = DatasetItem.objects.filter(dataset=dataset).order_by("split", "position")
    if split != "all":
        queryset = queryset.filter(split=split)
    return queryset.values(*ITEM_FIELDS).iterator(chunk_size=2000)


def dataset_export(*, dataset: Dataset, fmt: str = "", split: str = "train") -> tuple[str, Iterator[bytes]]:
    """Check the format and split first (errors before any byte is streamed), then stream JSONL."""
    fmt = fmt or exporters.default_format(dataset.kind)
    errors = {}
    if fmt not in exporters.FORMATS:
        errors["format"] = [f"Must be one of {', '.join(exporters.FORMATS)}."]
    elif dataset.kind not in exporters.FORMATS[fmt][1]:
        errors["format"] = [f"{fmt} does not fit {dataset.kind} examples; use {exporters.default_format(dataset.kind)}."]
    if split not in SPLITS:
        errors["split"] = [f"Must be one of {', '.join(SPLITS)}."]
    if dataset.status != Dataset.Status.FROZEN:
        errors["dataset"] = ["Only a frozen dataset can be exported."]
    if errors:
        raise CurationError("The export request is invalid.", fields=errors)
    return fmt, exporters.jsonl(dataset_items(dataset=dataset, split=split), fmt)


def gap_list(*, task: str = "") -> QuerySet[KnowledgeGap]:
    queryset = KnowledgeGap.objects.order_by("-size", "id")
    return queryset.filter(task=task) if task else queryset


def conflict_list(*, task: str = "", status: str = "") -> QuerySet[DuplicateConflict]:
    """Conflicts with both examples, oldest first; `status`: open, resolved or empty (both)."""
    if status and status not in DuplicateConflict.Status.values:
        raise CurationError("The conflict filter is invalid.", fields={"status": ["Must be open or resolved."]})
    queryset = DuplicateConflict.objects.select_related("example_a", "example_b").order_by("id")
    if task:
        queryset = queryset.filter(task=task)
    return queryset.filter(status=status) if status else queryset
