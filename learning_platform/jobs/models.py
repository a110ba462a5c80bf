"""The row every long piece of work is tracked on, and the list of every kind of it.

A kind of job is a concrete model that inherits `Job` and names the django-q2 task that runs one
row (`job_task`); `learning_platform.jobs.job_run` runs it, `jobs_reap_stale` repairs it. Nothing
else is needed for a new kind: its lifecycle (claim, heartbeat, progress, log, failure, cancel,
re-queue after a dead worker) is this module's.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.apps import apps
from django.db import models

LOG_TAIL_CHARS = 20_000
ERROR_CHARS = 20_000


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(models.Model):
    """What every job row holds. Subclasses add their own fields and may set:

    - `job_kind`: its name in logs, the reaper's report and metrics (default: the model name);
    - `job_task`: the dotted django-q2 task that runs a row given its primary key (needed to
      re-queue it);
    - `job_rerunnable`: the reaper re-queues a job whose worker died (fewer than
      JOB_MAX_ATTEMPTS attempts) instead of failing it; only for work that can start over.
    """

    Status = JobStatus

    job_kind: ClassVar[str] = ""
    job_task: ClassVar[str] = ""
    job_rerunnable: ClassVar[bool] = False

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text="How many times a worker started it.")
    progress = models.FloatField(default=0.0, help_text="Percent done.")
    log_tail = models.TextField(blank=True, help_text="The last lines of its log (newest last).")
    error = models.TextField(blank=True, help_text="Why it failed, with the traceback.")
    cancel_requested = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Written every JOB_HEARTBEAT_SECONDS while it runs.",
    )

    class Meta:
        abstract = True

    @classmethod
    def kind(cls) -> str:
        return cls.job_kind or cls._meta.model_name or cls.__name__.lower()

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None

    def stale_fields(self) -> dict[str, Any]:
        """Fields of its own the reaper writes with the failure of a job whose worker died
        (a training job records its last checkpoint); the reason goes to `error` either way."""
        return {}

    def stale_advice(self) -> str:
        """A sentence added to the reaper's reason (what the operator can do next)."""
        return ""


# The lifecycle fields, as the admin shows them (read-only: the runner and the reaper write them).
LIFECYCLE_FIELDS = (
    "status",
    "attempts",
    "progress",
    "created_at",
    "started_at",
    "heartbeat_at",
    "finished_at",
    "cancel_requested",
    "log_tail",
    "error",
)


def job_models() -> list[type[Job]]:
    """Every concrete kind of job, for the reaper, the admin and metrics."""
    return [model for model in apps.get_models() if issubclass(model, Job)]
