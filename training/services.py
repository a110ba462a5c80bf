"""Writes of the training app: create, start, cancel and resume jobs; readiness.

The API, the admin, `manage.py train` and the django-q2 tasks all call these functions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, Q
from django.utils import timezone

from curation.models import Dataset, TrainingExample
from learning_platform.errors import DomainError
from learning_platform.jobs import job_dispatch

from . import recipes
from .base_models import resolve_base_model
from .models import TrainingJob, TrainingPolicy

logger = logging.getLogger(__name__)
KIND_FOR_METHOD = {method: kind for kind, method in recipes.METHOD_FOR_KIND.items()}


class TrainingError(DomainError):
    """A training request refused; nothing was started."""


def model_parameters(base_model: str) -> int | None:
    """Approximate parameter count from a local config.json (no weights loaded); None if unknown."""
    config_path = Path(base_model) / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    hidden, layers = config.get("hidden_size", 0), config.get("num_hidden_layers", 0)
    inner, vocab = config.get("intermediate_size", 4 * hidden), config.get("vocab_size", 0)
    return layers * (4 * hidden * hidden + 3 * hidden * inner) + vocab * hidden


def _dataset_for(task: str, dataset_id: int | None, method: str | None) -> Dataset:
    if dataset_id is not None:
        dataset = Dataset.objects.filter(pk=dataset_id).first()
        if dataset is None:
            raise TrainingError("No such dataset.", fields={"dataset": [f"Dataset {dataset_id} does not exist."]})
    else:
        candidates = Dataset.objects.filter(task=task, status=Dataset.Status.FROZEN, tainted=False)
        if method:
            candidates = candidates.filter(kind=KIND_FOR_METHOD[method])
        dataset = candidates.order_by("-frozen_at", "-pk").first()
        if dataset is None:
            raise TrainingError(f"Task {task!r} has no frozen, untainted dataset to train on.", fields={"dataset": ["Freeze one first."]})
    problems = []
    if dataset.status != Dataset.Status.FROZEN:
        problems.append("Only a frozen dataset can be trained on.")
    if dataset.tainted:
        problems.append(f"The dataset is tainted: {dataset.tainted_reason}")
    if dataset.task != task:
        problems.append(f"The dataset belongs to task {dataset.task!r}, not {task!r}.")
    if problems:
        raise TrainingError(problems[0], fields={"dataset": problems})
    return dataset


def job_create(
    *,
    task: str,
    dataset_id: int | None = None,
    method: str | None = None,
    backend: str = "auto",
    recipe: dict[str, Any] | None = None,
    continue_from_current: bool = False,
    base_model: str | None = None,
    requested_by: str = "",
) -> TrainingJob:
    """A queued job on a frozen dataset; the method follows the dataset's kind unless forced."""
    if method and method not in recipes.METHODS:
        raise TrainingError(f"Unknown method {method!r}.", fields={"method": [f"Must be one of {', '.join(recipes.METHODS)}."]})
    if backend not in ("auto", "trl", "unsloth"):
        raise TrainingError(f"Unknown backend {backend!r}.", fields={"backend": ["Must be auto, trl or unsloth."]})
    dataset = _dataset_for(task, dataset_id, method)
    method = method or recipes.METHOD_FOR_KIND[dataset.kind]
    if KIND_FOR_METHOD[method] != dataset.kind:
        raise TrainingError(
            f"{method} trains on {KIND_FOR_METHOD[method]} examples, and dataset {dataset.pk} holds {dataset.kind} examples.",
            fields={"method": [f"Use {recipes.METHOD_FOR_KIND[dataset.kind]} for this dataset."]},
        )
    try:
        parsed = recipes.parse(recipe)
    except recipes.RecipeError as exc:
        raise TrainingError("The recipe is invalid.", fields={f"recipe.{k}": v for k, v in exc.errors.items()}) from None
    base = resolve_base_model(base_model)
    train_count = dataset.stats.get("splits", {}).get("train", dataset.stats.get("count", 0))
    parameters = model_parameters(base)
    resolved, notes = recipes.resolve(parsed, examples=train_count, parameters=parameters or 10**9)
    parent = None
    if continue_from_current:
        parent = TrainingJob.objects.filter(task=task, status=TrainingJob.Status.SUCCEEDED, method=method).order_by("-finished_at").first()
        if parent is None:
            raise TrainingError(
                f"Task {task!r} has no finished {method} job to continue from.", fields={"continue_from_current": ["Nothing to continue."]}
            )
    job = TrainingJob.objects.create(
        task=task, dataset=dataset, base_model=base, method=method, backend=backend, recipe=resolved.as_dict(), recipe_notes=notes,
        seed=resolved.seed, parent_job=parent, requested_by=requested_by,
    )  # fmt: skip
    job.output_dir = str(Path(settings.ARTIFACTS_DIR) / "jobs" / f"job-{job.pk}")
    job.save(update_fields=["output_dir"])
    return job


def job_enqueue(*, job: TrainingJob) -> TrainingJob:
    """Run the job on the task queue once the current transaction commits."""
    job_dispatch(job=job)
    return job


def job_start(**kwargs: Any) -> TrainingJob:
    return job_enqueue(job=job_create(**kwargs))


def job_cancel(*, job: TrainingJob) -> TrainingJob:
    """A queued job is cancelled at once; a running one stops at its next step, leaving a checkpoint."""
    if job.status == TrainingJob.Status.QUEUED:
        TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.CANCELLED, cancel_requested=True, finished_at=timezone.now())
    elif job.status == TrainingJob.Status.RUNNING:
        TrainingJob.objects.filter(pk=job.pk).update(cancel_requested=True)
    else:
        raise TrainingError(f"Job {job.pk} is {job.status}; only a queued or running job can be cancelled.", code="conflict")
    job.refresh_from_db()
    return job


def job_resume(*, job: TrainingJob) -> TrainingJob:
    """Put a failed or cancelled job with a checkpoint back in the queue; it continues from there."""
    if not job.resumable:
        raise TrainingError(f"Job {job.pk} is {job.status} without a checkpoint; it cannot be resumed.", code="conflict")
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingJob.Status.QUEUED, cancel_requested=False, error="", finished_at=None)
    job.refresh_from_db()
    return job


def readiness(*, task: str) -> dict[str, Any]:
    """Whether the task's policy says it is ready to train, and if not, which threshold is short."""
    policy = TrainingPolicy.objects.filter(task=task).first() or TrainingPolicy(task=task)
    usable = TrainingExample.objects.filter(task=task, duplicate_of__isnull=True).exclude(tier="reject").exclude(review_status="rejected")
    stats = usable.aggregate(count=Count("id"), gold=Count("id", filter=Q(tier="gold")), quality=Avg("quality_score"))
    last = TrainingJob.objects.filter(task=task).exclude(status=TrainingJob.Status.CANCELLED).order_by("-created_at").first()
    hours = (timezone.now() - last.created_at).total_seconds() / 3600 if last else None
    checks = {
        "enabled": {"ok": policy.enabled, "value": policy.enabled, "needed": True},
        "examples": {"ok": stats["count"] >= policy.min_examples, "value": stats["count"], "needed": policy.min_examples},
        "gold_examples": {"ok": stats["gold"] >= policy.min_gold_examples, "value": stats["gold"], "needed": policy.min_gold_examples},
        "average_quality": {
            "ok": (stats["quality"] or 0) >= policy.min_average_quality,
            "value": round(stats["quality"] or 0, 4),
            "needed": policy.min_average_quality,
        },
        "hours_since_last_job": {
            "ok": hours is None or hours >= policy.min_hours_between_jobs,
            "value": None if hours is None else round(hours, 1),
            "needed": policy.min_hours_between_jobs,
        },
    }
    short = []
    for name, check in checks.items():
        if not check["ok"]:
            gap = (
                f" (short by {check['needed'] - check['value']:g})"
                if isinstance(check["value"], int | float) and not isinstance(check["value"], bool)
                else ""
            )
            short.append(f"{name}: {check['value']} of {check['needed']} needed{gap}")
    return {"task": task, "ready": not short, "short": short, "checks": checks}


def train_ready_tasks(*, requested_by: str = "schedule") -> list[str]:
    """The weekly schedule: freeze a fresh dataset and start a job for every task whose policy
    allows auto-training and says it is ready. Returns one line per task considered."""
    from curation.services import CurationError, dataset_freeze_new

    report = []
    for policy in TrainingPolicy.objects.filter(enabled=True, auto_train=True).order_by("task"):
        state = readiness(task=policy.task)
        if not state["ready"]:
            report.append(f"{policy.task}: not ready ({'; '.join(state['short'])})")
            continue
        kind = KIND_FOR_METHOD[policy.method] if policy.method else "sft"
        try:
            dataset = dataset_freeze_new(task=policy.task, kind=kind, name="weekly", min_tier=policy.min_tier, frozen_by=requested_by)
            job = job_start(task=policy.task, dataset_id=dataset.pk, requested_by=requested_by)
        except (CurationError, TrainingError) as exc:
            report.append(f"{policy.task}: skipped ({exc.one_line()})")
            continue
        report.append(f"{policy.task}: started job {job.pk} on dataset {dataset.pk}")
    return report or ["no task has an enabled auto-training policy"]
