"""Writes of the training app: create, start, cancel and resume jobs; policies and readiness.

The API, the admin, `manage.py train` and the django-q2 tasks all call these functions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_slug
from django.db import transaction
from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from curation.models import TIERS, Dataset, TrainingExample
from learning_platform.errors import DomainError
from learning_platform.jobs import job_dispatch

from . import recipes
from .base_models import is_pretrained, resolve_base_model
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
    resolved, notes = recipes.resolve(parsed, examples=train_count, parameters=parameters or 10**9, pretrained=is_pretrained(base))
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


# --- Policies and readiness: one answer to "is this task ready", for the status, the admin and the schedule ---

POLICY_FIELDS = (
    "enabled", "auto_train", "min_examples", "min_gold_examples", "min_average_quality", "min_hours_between_jobs",
    "method", "min_tier",
)  # fmt: skip
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("Must be true or false.")


MOST = 1_000_000_000  # the columns are 32-bit integers


def _count(value: Any, least: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MOST:
        raise ValueError(f"Must be a whole number from {least} to {MOST:,}.")
    return value


def _share(value: Any) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        number = None
    if number is None or not 0 <= number <= 1:
        raise ValueError("Must be a number from 0 to 1 (a quality score).")
    return number


def _choice(value: Any, choices: tuple[str, ...]) -> str:
    value = "" if value is None else value
    if value not in choices:
        raise ValueError(f"Must be one of {', '.join(c or '(empty)' for c in choices)}.")
    return value


POLICY_PARSERS = {
    "enabled": _boolean,
    "auto_train": _boolean,
    "min_examples": lambda v: _count(v, 1),
    "min_gold_examples": lambda v: _count(v, 0),
    "min_average_quality": _share,
    "min_hours_between_jobs": lambda v: _count(v, 0),
    "method": lambda v: _choice(v, ("", *recipes.METHODS)),
    "min_tier": lambda v: _choice(v, TIERS[:3]),
}


def policy_validate(*, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The changes as typed values (strings from a command line are parsed); a TrainingError naming
    every bad field otherwise. The API, the admin and `manage.py training_policy` all validate here."""
    values, errors = {}, {}
    for name, value in changes.items():
        if name not in POLICY_PARSERS:
            errors[name] = [f"Unknown field; a policy has {', '.join(POLICY_FIELDS)}."]
            continue
        try:
            values[name] = POLICY_PARSERS[name](value)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if errors:
        raise TrainingError("The training policy is invalid.", fields=errors)
    return values


def policy_of(*, task: str) -> TrainingPolicy:
    """The task's saved policy, or the default one (unsaved: `pk` is None) that applies until one is saved."""
    return TrainingPolicy.objects.filter(task=task).first() or TrainingPolicy(task=task)


@transaction.atomic
def policy_update(*, task: str, changes: Mapping[str, Any], replace: bool = False) -> TrainingPolicy:
    """Save the task's policy with these changes (creating it from the defaults); `replace` resets every
    field not named to its default (a PUT)."""
    try:
        validate_slug(task)
    except ValidationError:
        raise TrainingError(f"{task!r} is not a task name.", fields={"task": ["Letters, digits, - and _ only."]}) from None
    values = policy_validate(changes=changes)
    policy = TrainingPolicy.objects.select_for_update().filter(task=task).first() or TrainingPolicy(task=task)
    defaults = TrainingPolicy(task=task)
    for name in POLICY_FIELDS:
        if name in values or replace:
            setattr(policy, name, values.get(name, getattr(defaults, name)))
    policy.save()
    return policy


def policy_as_dict(policy: TrainingPolicy) -> dict[str, Any]:
    return {"task": policy.task, "saved": policy.pk is not None, **{name: getattr(policy, name) for name in POLICY_FIELDS}}


def _usable_examples(policy: TrainingPolicy) -> QuerySet[TrainingExample]:
    """What a dataset frozen under this policy would hold: its kind, at its minimum tier or better."""
    kind = KIND_FOR_METHOD[policy.method] if policy.method else "sft"
    tiers = TIERS[: TIERS.index(policy.min_tier) + 1] if policy.min_tier in TIERS else TIERS[:3]
    return (
        TrainingExample.objects.filter(task=policy.task, kind=kind, tier__in=tiers, duplicate_of__isnull=True)
        .exclude(review_status=TrainingExample.Review.REJECTED)
        .exclude(source_interaction__subject__opted_out=True)
    )


def readiness(*, task: str) -> dict[str, Any]:
    """Whether the task is ready to train under its policy (the saved one, or the default), and if not,
    which threshold is short. The status API, the admin and the weekly schedule all ask this."""
    policy = policy_of(task=task)
    stats = _usable_examples(policy).aggregate(count=Count("id"), gold=Count("id", filter=Q(tier="gold")), quality=Avg("quality_score"))
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
    short = [_shortfall(name, check) for name, check in checks.items() if not check["ok"]]
    return {"task": task, "ready": not short, "short": short, "checks": checks, "policy": policy_as_dict(policy)}


def _shortfall(name: str, check: dict[str, Any]) -> str:
    value = check["value"]
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    gap = f" (short by {check['needed'] - value:g})" if numeric else ""
    return f"{name}: {value} of {check['needed']} needed{gap}"


def training_tasks() -> list[str]:
    """Every task the weekly schedule looks at: those with curated examples, and those with a saved policy."""
    with_examples = TrainingExample.objects.order_by().values_list("task", flat=True).distinct()
    return sorted(set(with_examples) | set(TrainingPolicy.objects.values_list("task", flat=True)))


def train_ready_tasks(*, requested_by: str = "schedule") -> list[str]:
    """The weekly schedule: for every task that readiness calls ready (the default policy applies until
    one is saved; a saved policy with `enabled` or `auto_train` off opts the task out), freeze a fresh
    dataset and start a job. Returns one line per task considered."""
    report = [_train_if_ready(task, requested_by) for task in training_tasks()]
    return report or ["no task has curated examples or a training policy"]


def _train_if_ready(task: str, requested_by: str) -> str:
    from curation.services import CurationError, dataset_freeze_new

    state = readiness(task=task)
    policy = state["policy"]
    which = "its policy" if policy["saved"] else "the default policy"
    if not (policy["enabled"] and policy["auto_train"]):
        return f"{task}: skipped ({which} turns {'training' if not policy['enabled'] else 'auto-training'} off)"
    if not state["ready"]:
        return f"{task}: not ready under {which} ({'; '.join(state['short'])})"
    kind = KIND_FOR_METHOD[policy["method"]] if policy["method"] else "sft"
    try:
        dataset = dataset_freeze_new(task=task, kind=kind, name="weekly", min_tier=policy["min_tier"], frozen_by=requested_by)
        job = job_start(task=task, dataset_id=dataset.pk, requested_by=requested_by)
    except (CurationError, TrainingError) as exc:
        return f"{task}: skipped ({exc.one_line()})"
    return f"{task}: started job {job.pk} on dataset {dataset.pk} under {which}"
