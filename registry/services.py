"""Writes of the registry: register versions, approve, reject, promote, roll back, retire, taint.

Every lifecycle change runs in one transaction that locks the task's champion row and writes
its LifecycleEvent, so concurrent promotions cannot both win.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django_q.tasks import async_task

from curation.models import Dataset, DatasetItem
from learning_platform.errors import DomainError
from training.models import TrainingJob

from .models import ActiveModel, LifecycleEvent, ModelVersion, PromotionPolicy, Retraining
from .signals import version_registered

S = ModelVersion.Status
A = LifecycleEvent.Action
ADAPTER_EVENTS = (A.REGISTER, A.PROMOTE, A.ROLLBACK, A.RETIRE, A.REJECT, A.TAINT)


class RegistryError(DomainError):
    """A registry request refused; nothing changed."""


def _slug(base_model: str) -> str:
    name = Path(base_model.rstrip("/")).name or base_model
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "model"


def _event(
    task: str,
    action: str,
    actor: str,
    reason: str = "",
    *,
    from_version: ModelVersion | None = None,
    to_version: ModelVersion | None = None,
) -> None:
    event = LifecycleEvent.objects.create(
        task=task, action=action, actor=actor, reason=reason, from_version=from_version, to_version=to_version
    )
    if settings.WEBHOOK_URLS:
        # after the commit, on the queue, and robust: a failing webhook never undoes or blocks a change
        transaction.on_commit(lambda: async_task("registry.tasks.send_webhooks", event.pk), robust=True)
    if _adapter_event(action, to_version):
        # the remote server loads or unloads the adapter after the commit; a failure never undoes it
        transaction.on_commit(lambda: async_task("registry.tasks.sync_remote_adapter", event.pk), robust=True)


def _adapter_event(action: str, version: ModelVersion | None) -> bool:
    """Whether a remote server whose adapters the platform manages (SERVING_REMOTE_ADAPTER_ROOT)
    must load or unload `version`'s adapter after this change (registry/serving/adapters.py)."""
    remote = settings.SERVING_BACKEND == "remote" and settings.SERVING_REMOTE_ADAPTER_ROOT
    return bool(remote and version is not None and version.adapter_path and action in ADAPTER_EVENTS)


def event_record(
    *,
    task: str,
    action: str,
    actor: str,
    reason: str = "",
    from_version: ModelVersion | None = None,
    to_version: ModelVersion | None = None,
) -> None:
    """A lifecycle event written by another app (experiments starting and ending, recommendations),
    sent to the webhooks like every other event."""
    _event(task, action, actor, reason, from_version=from_version, to_version=to_version)


def _create(task: str, base_model: str, *, number: int | None, **fields: Any) -> ModelVersion:
    """A new version numbered per task and base model (retried if two registrations race)."""
    for _ in range(5):
        try:
            with transaction.atomic():
                n = number
                if n is None:
                    n = (ModelVersion.objects.filter(task=task, base_model=base_model).aggregate(m=Max("number"))["m"] or 0) + 1
                name = f"{_slug(base_model)}-{task}-v{n}"
                return ModelVersion.objects.create(task=task, base_model=base_model, number=n, name=name, **fields)
        except IntegrityError:
            if number is not None:
                raise
    raise RegistryError(f"Could not number a new version of {task!r}; try again.", code="conflict")


def version_base(*, task: str, base_model: str) -> ModelVersion:
    """v0 of a task: the plain base model, registered on first use."""
    existing = ModelVersion.objects.filter(task=task, base_model=base_model, number=0).first()
    if existing:
        return existing
    try:
        version = _create(task, base_model, number=0, status=S.APPROVED, approved_by="system")
    except IntegrityError:
        return ModelVersion.objects.get(task=task, base_model=base_model, number=0)
    _event(task, A.REGISTER, "system", "the plain base model", to_version=version)
    return version


@transaction.atomic
def version_register_job(*, job: TrainingJob) -> ModelVersion:
    """Register the version a succeeded job made (idempotent), with its lineage."""
    if job.status != TrainingJob.Status.SUCCEEDED or not job.adapter_path:
        raise RegistryError(f"Job {job.pk} has not produced an adapter.", code="conflict")
    existing = ModelVersion.objects.filter(training_job=job).first()
    if existing:
        return existing
    base = version_base(task=job.task, base_model=job.base_model)
    parent = ModelVersion.objects.filter(training_job=job.parent_job).first() if job.parent_job_id else base
    dataset_tainted = Dataset.objects.filter(pk=job.dataset_id, tainted=True).values_list("tainted_reason", flat=True).first()
    retrains = Retraining.objects.filter(training_job=job).values_list("version_id", flat=True).first()
    version = _create(
        job.task, job.base_model, number=None, adapter_path=job.adapter_path, parent=parent, training_job=job, dataset_id=job.dataset_id,
        retrained_from_id=retrains,
        metrics={k: v for k, v in job.metrics.items() if isinstance(v, int | float)}, tainted=dataset_tainted is not None,
        tainted_reason=f"Trained on a tainted dataset: {dataset_tainted}" if dataset_tainted is not None else "",
    )  # fmt: skip
    _event(
        job.task,
        A.REGISTER,
        f"job:{job.pk}",
        f"trained by job {job.pk} on dataset {job.dataset_id}"
        + (f", retraining version {retrains} without the erased data" if retrains else ""),
        from_version=parent,
        to_version=version,
    )
    transaction.on_commit(lambda: version_registered.send(sender=ModelVersion, version=version))
    return version


def _locked(version: ModelVersion) -> ModelVersion:
    return ModelVersion.objects.select_for_update().get(pk=version.pk)


def _refuse_tainted(version: ModelVersion, what: str) -> None:
    if version.tainted:
        raise RegistryError(f"{version.name} is tainted and can never be {what}: {version.tainted_reason}", code="conflict")


@transaction.atomic
def version_approve(*, version: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
    version = _locked(version)
    _refuse_tainted(version, "approved")
    if version.status != S.CANDIDATE:
        raise RegistryError(f"{version.name} is {version.status}; only a candidate can be approved.", code="conflict")
    from django.utils import timezone

    version.status, version.approved_by, version.approved_at = S.APPROVED, actor, timezone.now()
    version.save(update_fields=["status", "approved_by", "approved_at"])
    _event(version.task, A.APPROVE, actor, reason, to_version=version)
    return version


@transaction.atomic
def version_reject(*, version: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
    version = _locked(version)
    if version.status not in (S.CANDIDATE, S.APPROVED):
        raise RegistryError(f"{version.name} is {version.status}; only a candidate or approved version can be rejected.", code="conflict")
    version.status = S.REJECTED
    version.save(update_fields=["status"])
    _event(version.task, A.REJECT, actor, reason, to_version=version)
    return version


def _champion_row(task: str) -> ActiveModel | None:
    # No join here: PostgreSQL re-checks a join against the updated row after waiting for the
    # lock, and a concurrent promotion (which changed version_id) would make the row vanish.
    return ActiveModel.objects.select_for_update().filter(task=task).first()


def _make_active(task: str, version: ModelVersion, row: ActiveModel | None) -> ModelVersion | None:
    """Point the task's champion row at `version` (creating it once); returns the previous champion."""
    previous = row.version if row else None
    if row is None:
        try:
            with transaction.atomic():
                ActiveModel.objects.create(task=task, version=version, revision=1)
        except IntegrityError:
            raise RegistryError(f"Another change to {task!r}'s champion won the race; try again.", code="conflict") from None
    else:
        row.version, row.revision = version, row.revision + 1
        row.save(update_fields=["version", "revision", "updated_at"])
    version.status = S.ACTIVE
    version.save(update_fields=["status"])
    return previous


@transaction.atomic
def version_promote(*, version: ModelVersion, actor: str, reason: str = "", allow_unapproved: bool = False) -> ModelVersion:
    """Make `version` its task's champion. It must be approved (unless the task's PromotionPolicy
    allows auto-promotion) and untainted; the previous champion goes back to approved."""
    row = _champion_row(version.task)
    version = _locked(version)
    _refuse_tainted(version, "promoted")
    auto = allow_unapproved or PromotionPolicy.objects.filter(task=version.task, auto_promote=True).exists()
    allowed = {S.APPROVED} | ({S.CANDIDATE} if auto else set())
    if version.status == S.ACTIVE:
        raise RegistryError(f"{version.name} is already the champion of {version.task!r}.", code="conflict")
    if version.status not in allowed:
        raise RegistryError(f"{version.name} is {version.status}; only an approved version can be promoted.", code="conflict")
    previous = _make_active(version.task, version, row)
    if previous is not None and previous.pk != version.pk:
        ModelVersion.objects.filter(pk=previous.pk, status=S.ACTIVE).update(status=S.APPROVED)
    _event(version.task, A.PROMOTE, actor, reason, from_version=previous, to_version=version)
    return version


@transaction.atomic
def version_rollback(*, task: str, actor: str, reason: str = "", to_version: ModelVersion | None = None) -> ModelVersion:
    """Back to the previous champion (the one the current champion replaced), or a named earlier
    version; the current champion is marked rolled back."""
    row = _champion_row(task)
    if row is None:
        raise RegistryError(f"Task {task!r} has no champion to roll back.", code="conflict")
    current = _locked(row.version)
    if to_version is None:
        promotion = LifecycleEvent.objects.filter(task=task, action__in=[A.PROMOTE, A.ROLLBACK], to_version=current).first()
        to_version = promotion.from_version if promotion else None
        if to_version is None:
            raise RegistryError(f"{current.name} replaced no earlier champion; name a version to roll back to.", code="conflict")
    target = _locked(to_version)
    if target.task != task or target.pk == current.pk:
        raise RegistryError(f"{target.name} is not an earlier version of {task!r}.", code="conflict")
    _refuse_tainted(target, "promoted")
    if target.status in (S.REJECTED, S.RETIRED):
        raise RegistryError(f"{target.name} is {target.status}; roll back to an approved or rolled-back version.", code="conflict")
    _make_active(task, target, row)
    ModelVersion.objects.filter(pk=current.pk).update(status=S.ROLLED_BACK)
    _event(task, A.ROLLBACK, actor, reason, from_version=current, to_version=target)
    target.refresh_from_db()
    return target


@transaction.atomic
def version_retire(*, version: ModelVersion, actor: str, reason: str = "") -> ModelVersion:
    version = _locked(version)
    if version.status == S.ACTIVE:
        raise RegistryError(f"{version.name} is the champion; promote another version or roll back first.", code="conflict")
    version.status = S.RETIRED
    version.save(update_fields=["status"])
    _event(version.task, A.RETIRE, actor, reason, to_version=version)
    return version


def versions_taint(*, dataset_ids: list[int], reason: str) -> list[ModelVersion]:
    """Mark every version trained on these datasets, and every version built on top of one, tainted."""
    tainted = []
    frontier = list(ModelVersion.objects.filter(dataset_id__in=dataset_ids, tainted=False))
    while frontier:
        for version in frontier:
            version.tainted, version.tainted_reason = True, f"Trained on data that was erased: {reason}"
            version.save(update_fields=["tainted", "tainted_reason"])
            _event(version.task, A.TAINT, "erasure", version.tainted_reason, to_version=version)
            tainted.append(version)
        frontier = list(ModelVersion.objects.filter(parent__in=frontier, tainted=False))
    return tainted


def _servable(version: ModelVersion | None) -> bool:
    return version is not None and not version.tainted and version.status not in (S.REJECTED, S.RETIRED)


def untainted_predecessor(*, version: ModelVersion) -> ModelVersion:
    """Where a tainted champion goes back to: the newest earlier champion it replaced (following
    promotions and rollbacks back in time) that is untainted and not rejected or retired; else
    its newest such lineage ancestor; else the task's base (v0)."""
    seen, node = {version.pk}, version
    while True:
        event = LifecycleEvent.objects.filter(task=version.task, action__in=[A.PROMOTE, A.ROLLBACK], to_version=node).first()
        node = event.from_version if event else None
        if node is None or node.pk in seen:
            break
        seen.add(node.pk)
        if _servable(node):
            return node
    ancestor = version.parent
    while ancestor is not None and not _servable(ancestor):
        ancestor = ancestor.parent
    return ancestor or version_base(task=version.task, base_model=version.base_model)


def version_rollback_tainted(*, task: str, actor: str, reason: str) -> ModelVersion:
    """Roll a task whose champion is tainted back to its untainted predecessor (the caller holds
    the champion row's lock); returns the new champion."""
    row = _champion_row(task)
    if row is None or not ModelVersion.objects.filter(pk=row.version_id, tainted=True).exists():
        raise RegistryError(f"The champion of {task!r} is not tainted.", code="conflict")
    current = ModelVersion.objects.get(pk=row.version_id)
    target = untainted_predecessor(version=current)
    return version_rollback(task=task, actor=actor, reason=f"{reason}; back to {target.name}", to_version=target)


def versions_compare(*, first: ModelVersion, second: ModelVersion) -> dict[str, Any]:
    """Metrics side by side, with the difference of the second against the first in percent."""
    rows = {}
    for name in sorted(set(first.metrics) | set(second.metrics)):
        a, b = first.metrics.get(name), second.metrics.get(name)
        change = round((b - a) / abs(a) * 100, 2) if isinstance(a, int | float) and isinstance(b, int | float) and a else None
        rows[name] = {first.name: a, second.name: b, "change_percent": change}
    return {"versions": [first.name, second.name], "metrics": rows}


def lineage(*, version: ModelVersion) -> dict[str, Any]:
    """A version's ancestry, job, dataset and the interactions its data came from."""
    chain, node = [], version
    while node is not None:
        chain.append({"name": node.name, "status": node.status, "job": node.training_job_id, "dataset": node.dataset_id,
                      "dataset_parent": node.dataset.parent_id if node.dataset else None,
                      "retrained_from": node.retrained_from.name if node.retrained_from else None})  # fmt: skip
        node = node.parent
    datasets = [v["dataset"] for v in chain if v["dataset"]]
    interactions = DatasetItem.objects.filter(dataset_id__in=datasets).values_list("source_interaction_id", flat=True).distinct()
    return {"version": version.name, "ancestry": chain, "interaction_count": interactions.count()}


def versions_trained_on(*, interaction_id: Any) -> list[ModelVersion]:
    """Every version whose training data (or an ancestor's) held this interaction."""
    datasets = DatasetItem.objects.filter(source_interaction_id=interaction_id).values_list("dataset_id", flat=True)
    found = list(ModelVersion.objects.filter(dataset_id__in=datasets))
    frontier = found
    while frontier:
        frontier = list(ModelVersion.objects.filter(parent__in=frontier))
        found += frontier
    return found
