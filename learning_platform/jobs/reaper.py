"""The one reaper: a running job whose heart stopped is failed, or re-queued when its kind can
start over, with the reason written into its error and log."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import ERROR_CHARS, LOG_TAIL_CHARS, Job, JobStatus, job_models

logger = logging.getLogger(__name__)


def job_dispatch(*, job: Job) -> None:
    """Queue the kind's task for this row once the current transaction commits."""
    from django_q.tasks import async_task

    if not job.job_task:
        raise ValueError(f"{type(job).__name__} names no job_task: it cannot be queued")
    name = f"{job.kind()}-{job.pk}-{job.attempts + 1}"
    transaction.on_commit(lambda: async_task(job.job_task, job.pk, task_name=name))


def _reason(job: Job, stale_seconds: float, now: Any) -> str:
    beat = job.heartbeat_at or job.started_at
    age = f"{(now - beat).total_seconds():.0f} s" if beat else "ever"
    return (
        f"No heartbeat for {age} (JOB_STALE_SECONDS={stale_seconds:g}): the process running attempt "
        f"{job.attempts} died or lost the database."
    )


def _reap(job: Job, stale_seconds: float, now: Any) -> str:
    """Fail or re-queue one stale job (its row locked); returns what was done."""
    reason = _reason(job, stale_seconds, now)
    requeue = job.job_rerunnable and bool(job.job_task) and job.attempts < settings.JOB_MAX_ATTEMPTS
    if requeue:
        outcome, fields = "requeued", {"status": JobStatus.QUEUED, "heartbeat_at": None}
        next_attempt = f"attempt {job.attempts + 1} of {settings.JOB_MAX_ATTEMPTS}"
        note = f"re-queued by the reaper ({next_attempt} next): {reason}"
    else:
        own = job.stale_fields()
        reason = f"{reason} {job.stale_advice()}".strip()
        outcome, fields = "failed", {"status": JobStatus.FAILED, "finished_at": now, **own}
        note = f"failed by the reaper: {reason}"
    fields["error"] = reason[:ERROR_CHARS]
    fields["log_tail"] = (job.log_tail + f"{now:%Y-%m-%d %H:%M:%S} {note}\n")[-LOG_TAIL_CHARS:]
    type(job).objects.filter(pk=job.pk).update(**fields)
    logger.warning("%s %s: %s", job.kind(), job.pk, note)
    if requeue:
        job_dispatch(job=job)
    return outcome


def _reap_kind(model: type[Job], stale_seconds: float, counts: Counter[str]) -> None:
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_seconds)
    stale = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True)
    for pk in model.objects.filter(stale, status=JobStatus.RUNNING).values_list("pk", flat=True):
        with transaction.atomic():
            # skip_locked: a job whose runner is writing its end right now is not stale
            rows = model.objects.select_for_update(skip_locked=True)
            job = rows.filter(stale, pk=pk, status=JobStatus.RUNNING).first()
            if job is not None:
                counts[f"{model.kind()} {_reap(job, stale_seconds, now)}"] += 1


def jobs_reap_stale(*, stale_seconds: float | None = None) -> dict[str, int]:
    """Fail or re-queue every running job, of every kind, whose heartbeat is older than
    JOB_STALE_SECONDS. Returns counts such as {"curationrun requeued": 1}."""
    seconds = settings.JOB_STALE_SECONDS if stale_seconds is None else stale_seconds
    counts: Counter[str] = Counter()
    for model in job_models():
        _reap_kind(model, seconds, counts)
    return dict(counts)
