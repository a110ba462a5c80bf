"""django-q2 entry points of training."""

from __future__ import annotations

from . import runner, services


def execute_job(job_id: int) -> str:
    job = runner.job_execute(job_id=job_id)
    return f"training job {job.pk}: {job.status}"


def weekly_training() -> str:
    return "\n".join(services.train_ready_tasks())
