"""Long work, one shape: the `Job` row, its runner and its reaper (see models.py)."""

from __future__ import annotations

from .models import LIFECYCLE_FIELDS, Job, JobStatus, job_models
from .reaper import job_dispatch, jobs_reap_stale
from .runner import JobCancelled, JobContext, job_run, with_retry

__all__ = [
    "LIFECYCLE_FIELDS",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobStatus",
    "job_dispatch",
    "job_models",
    "job_run",
    "jobs_reap_stale",
    "with_retry",
]
