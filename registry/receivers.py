"""What the registry does when training finishes a job or curation taints datasets (an erasure)."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from curation.signals import datasets_tainted
from training.signals import job_succeeded

from . import erasure, services


@receiver(job_succeeded, dispatch_uid="registry.register_job")
def register_job(sender: Any, job: Any, **kwargs: Any) -> None:
    services.version_register_job(job=job)


@receiver(datasets_tainted, dispatch_uid="registry.taint_versions")
def taint_versions(sender: Any, dataset_ids: list[int], reason: str, erasure_id: int | None = None, **kwargs: Any) -> dict[str, Any]:
    """Versions tainted, tainted champions rolled back and retrained per the task's policy."""
    return erasure.versions_taint_for_erasure(dataset_ids=dataset_ids, reason=reason, erasure_id=erasure_id)
