"""What the registry does when an erasure taints datasets (registry/receivers.py calls this inside
the erasure's transaction): taint the versions trained on them, and act on the task's policy
(PromotionPolicy.on_taint) for a tainted champion: roll back at once to its untainted
predecessor, in the erasure's own transaction, and queue a retraining of its recipe on its
dataset minus the erased rows (a Retraining job, dispatched after the commit).

A tainted version never serves: the champion is rolled back (or answers 409 under alert_only),
canaries and shadows stop (abtesting hears `versions_tainted`), routes skip it, and a judge that
is a tainted version is not asked.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from curation.models import Dataset
from curation.services import dataset_derive
from learning_platform.errors import DomainError
from learning_platform.jobs import JobContext, job_dispatch, job_run
from training import services as training

from . import services
from .models import ActiveModel, ModelVersion, PromotionPolicy, Retraining
from .signals import versions_tainted

logger = logging.getLogger(__name__)
P = PromotionPolicy.OnTaint


def on_taint(task: str) -> str:
    """The task's policy (rollback_and_retrain when it has no PromotionPolicy row)."""
    found = PromotionPolicy.objects.filter(task=task).values_list("on_taint", flat=True).first()
    return found or P.ROLLBACK_AND_RETRAIN


def versions_taint_for_erasure(*, dataset_ids: list[int], reason: str, erasure_id: int | None) -> dict[str, Any]:
    """Taint, stop what pits a tainted version, roll back tainted champions and queue their
    retraining; returns counts for the erasure record. The champion rows of the affected tasks
    are locked first, in task order, as a promotion locks them (no deadlock with one)."""
    tasks = sorted(set(ModelVersion.objects.filter(dataset_id__in=dataset_ids).values_list("task", flat=True)))
    list(ActiveModel.objects.select_for_update().filter(task__in=tasks).order_by("task").values_list("pk", flat=True))
    tainted = services.versions_taint(dataset_ids=dataset_ids, reason=reason)
    counts: dict[str, Any] = {"versions_tainted": len(tainted), "versions_rolled_back": 0, "versions_retrained": 0}
    for _receiver, answer in versions_tainted.send(sender=ModelVersion, versions=tainted, erasure_id=erasure_id):
        for name, value in (answer or {}).items():
            counts[name] = counts.get(name, 0) + value
    ids = {v.pk for v in tainted}
    for row in ActiveModel.objects.filter(task__in={v.task for v in tainted}, version_id__in=ids).order_by("task"):
        rolled, retrained = _act_on_champion(row.task, ModelVersion.objects.get(pk=row.version_id), erasure_id)
        counts["versions_rolled_back"] += rolled
        counts["versions_retrained"] += retrained
    return counts


def _act_on_champion(task: str, version: ModelVersion, erasure_id: int | None) -> tuple[int, int]:
    policy = on_taint(task)
    if policy == P.ALERT_ONLY:
        # the TAINT event (and its webhook) is the alert; the champion answers 409 until staff act
        services.event_record(task=task, action=services.A.TAINT, actor="erasure", to_version=version,
                              reason=f"erasure {erasure_id}: the champion is tainted and answers 409 (policy alert_only)")  # fmt: skip
        return 0, 0
    try:
        with transaction.atomic():  # a refused rollback leaves the erasure itself standing
            services.version_rollback_tainted(
                task=task, actor="erasure", reason=f"erasure {erasure_id} tainted the champion {version.name}"
            )
    except DomainError:
        logger.exception("erasure %s: the tainted champion of %s could not be rolled back", erasure_id, task)
        return 0, 0
    return 1, int(policy == P.ROLLBACK_AND_RETRAIN and retraining_queue(version=version, erasure_id=erasure_id) is not None)


def retraining_queue(*, version: ModelVersion, erasure_id: int | None) -> Retraining | None:
    """Queue a retraining of a tainted version (once per version) when its task's policy says so
    and it was trained by a job on a dataset; the job is dispatched after the commit."""
    if on_taint(version.task) != P.ROLLBACK_AND_RETRAIN or version.training_job_id is None or version.dataset_id is None:
        return None
    retraining, created = Retraining.objects.get_or_create(version=version, defaults={"erasure_id": erasure_id})
    if created:
        job_dispatch(job=retraining)
    return retraining


def retraining_execute(*, retraining_id: int) -> Retraining:
    """The job's work, in one transaction: derive the dataset without the erased rows (a new
    frozen version, parent = the tainted version's dataset) and queue a training job with the
    tainted version's method, recipe, backend and base model, started from the base (the tainted
    weights are never a starting point). Its version registers with retrained_from set."""

    def work(context: JobContext) -> None:
        with transaction.atomic():
            retraining = Retraining.objects.select_for_update().get(pk=retraining_id)
            if retraining.training_job_id:
                return
            old = retraining.version.training_job
            source = Dataset.objects.get(pk=retraining.version.dataset_id)
            dataset = dataset_derive(source=source, created_by=f"retraining:{retraining.pk}")
            job = training.job_create(
                task=old.task, dataset_id=dataset.pk, method=old.method, backend=old.backend, recipe=old.recipe,
                base_model=old.base_model, requested_by=f"retraining:{retraining.pk} (erasure {retraining.erasure_id})",
            )  # fmt: skip
            Retraining.objects.filter(pk=retraining.pk).update(dataset=dataset, training_job=job)
            training.job_enqueue(job=job)
        context.log(f"dataset {dataset.pk} ({dataset.stats['count']} items, from {source.pk}); training job {job.pk} queued")

    return job_run(Retraining, retraining_id, work)
