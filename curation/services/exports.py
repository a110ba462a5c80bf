"""Files the platform writes from datasets, tracked so that an erasure can delete them."""

from __future__ import annotations

import logging
from pathlib import Path

from django.utils import timezone

from ..models import Dataset, DatasetExport

logger = logging.getLogger(__name__)


def dataset_export_record(*, dataset: Dataset, path: Path, fmt: str, split: str, rows: int, created_by: str) -> DatasetExport:
    """Track a file about to be written (before the first byte: a crashed export is tracked too)."""
    return DatasetExport.objects.create(
        dataset=dataset, path=str(path.resolve()), format=fmt, split=split, rows=rows, created_by=created_by
    )


def exports_delete(*, dataset_ids: list[int]) -> tuple[int, list[str]]:
    """Delete the files exported from these datasets; returns how many were deleted and a line for
    each one that could not be (it stays tracked, with the reason, and the erasure lists it)."""
    deleted, failed = 0, []
    for export in DatasetExport.objects.filter(dataset_id__in=dataset_ids, deleted_at__isnull=True):
        try:
            Path(export.path).unlink(missing_ok=True)
        except OSError as exc:
            logger.warning("export %s (%s) could not be deleted", export.pk, export.path, exc_info=True)
            DatasetExport.objects.filter(pk=export.pk).update(deletion_error=f"{type(exc).__name__}: {exc}")
            failed.append(f"export {export.pk} of dataset {export.dataset_id}: {export.path} ({type(exc).__name__}: {exc})")
            continue
        DatasetExport.objects.filter(pk=export.pk).update(deleted_at=timezone.now(), deletion_error="")
        deleted += 1
    return deleted, failed
