"""The platform's recurring tasks, declared in code and written by `manage.py setup_schedules`."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    schedule_type: str  # a django_q Schedule type: "D" daily, "W" weekly, "M" monthly, "H" hourly, "I" minutes
    minutes: int | None = None
    description: str = ""


SCHEDULES = [
    ScheduleSpec(
        name="purge-client-context",
        func="interactions.tasks.purge_client_context",
        schedule_type="D",
        description="Delete IP addresses and user agents older than CLIENT_CONTEXT_RETENTION_DAYS.",
    ),
    ScheduleSpec(
        name="daily-curation",
        func="curation.tasks.run_daily_curation",
        schedule_type="D",
        description="Curate what changed since the last run: examples, deduplication, knowledge gaps.",
    ),
    ScheduleSpec(
        name="weekly-training",
        func="training.tasks.weekly_training",
        schedule_type="W",
        description="Freeze a fresh dataset and train every task whose training policy says it is ready.",
    ),
    ScheduleSpec(
        name="reap-stale-jobs",
        func="learning_platform.jobs.tasks.reap_stale_jobs",
        schedule_type="I",
        minutes=settings.JOB_REAPER_MINUTES,
        description="Fail or re-queue every running job (any kind) whose heartbeat is older than JOB_STALE_SECONDS.",
    ),
    ScheduleSpec(
        name="refresh-version-stats",
        func="registry.tasks.refresh_version_stats",
        schedule_type="I",
        minutes=1,
        description="Recompute each served version's statistics (calls, errors, latency, feedback, trust) for the router.",
    ),
    ScheduleSpec(
        name="hourly-guardrails",
        func="abtesting.tasks.hourly_guardrails",
        schedule_type="H",
        description="Compare every new champion with its predecessor; roll back when it is significantly worse.",
    ),
    ScheduleSpec(
        name="hourly-experiments",
        func="abtesting.tasks.hourly_experiments",
        schedule_type="H",
        description="Evaluate running experiments (late corrections and feedback, stopping rules); recommend or decide.",
    ),
    ScheduleSpec(
        name="monthly-evaluation-reports",
        func="abtesting.tasks.monthly_reports",
        schedule_type="M",
        description="Run every suite on each task's champion and earlier champions; store a report (trend, regressions).",
    ),
]

# Names of schedules this code no longer declares: `setup_schedules` deletes them.
RETIRED = ["reap-stale-training-jobs"]
