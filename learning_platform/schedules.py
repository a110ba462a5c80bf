"""The platform's recurring tasks, declared in code and written by `manage.py setup_schedules`;
`schedule_run` runs one now (`manage.py run_schedule`, the admin's "Run now")."""

from __future__ import annotations

import ast
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

from learning_platform.errors import DomainError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    func: str
    schedule_type: str  # a django_q Schedule type: "D" daily, "W" weekly, "M" monthly, "H" hourly, "I" minutes
    minutes: int | None = None
    description: str = ""
    hour: int = 3  # UTC hour of the first run of a daily, weekly (Monday) or monthly (the 1st) schedule


SCHEDULES = [
    ScheduleSpec(
        name="purge-client-context",
        func="interactions.tasks.purge_client_context",
        schedule_type="D",
        description="Delete IP addresses and user agents older than CLIENT_CONTEXT_RETENTION_DAYS.",
        hour=1,
    ),
    ScheduleSpec(
        name="daily-curation",
        func="curation.tasks.run_daily_curation",
        schedule_type="D",
        description="Curate what changed since the last run: examples, deduplication, knowledge gaps.",
        hour=2,
    ),
    ScheduleSpec(
        name="weekly-training",
        func="training.tasks.weekly_training",
        schedule_type="W",
        description="Freeze a fresh dataset and train every task whose training policy says it is ready.",
        hour=3,
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
        hour=5,
    ),
]

# Names of schedules this code no longer declares: `setup_schedules` deletes them.
RETIRED = ["reap-stale-training-jobs"]


class ScheduleError(DomainError):
    """A schedule named that does not exist."""


def first_run(spec: ScheduleSpec, now: datetime) -> datetime:
    """When a newly written schedule first fires (UTC): the next boundary of its period, never at once,
    so nothing runs before the platform has data. Minutes: one interval from now; hourly: the next full
    hour; daily: the next `spec.hour`:00; weekly: the next Monday at that hour; monthly: the next 1st."""
    if spec.schedule_type == "I":
        return now + timedelta(minutes=spec.minutes or 1)
    if spec.schedule_type == "H":
        return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    at = now.replace(hour=spec.hour, minute=0, second=0, microsecond=0)
    if spec.schedule_type == "W":
        at += timedelta(days=-now.weekday() % 7)
        return at if at > now else at + timedelta(weeks=1)
    if spec.schedule_type == "M":
        at = at.replace(day=1)
        if at > now:
            return at
        return at.replace(year=at.year + 1, month=1) if at.month == 12 else at.replace(month=at.month + 1)
    return at if at > now else at + timedelta(days=1)


def schedule_names() -> list[str]:
    """The declared schedules, then any other schedule in django-q2's table."""
    from django_q.models import Schedule

    declared = [spec.name for spec in SCHEDULES]
    others = Schedule.objects.exclude(name__in=declared).exclude(name=None).order_by("name").values_list("name", flat=True)
    return [*declared, *others]


def _target(name: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    from django_q.models import Schedule

    spec = next((spec for spec in SCHEDULES if spec.name == name), None)
    if spec is not None:
        return spec.func, (), {}
    row = Schedule.objects.filter(name=name).first() if name else None
    if row is None:
        raise ScheduleError(f"No schedule named {name!r}; the schedules are: {', '.join(schedule_names())}.", code="not_found")
    try:
        args = ast.literal_eval(row.args) if row.args else ()
        kwargs = ast.literal_eval(row.kwargs) if row.kwargs else {}
    except (ValueError, SyntaxError):
        raise ScheduleError(f"Schedule {name!r} has arguments that are not Python literals: {row.args!r}, {row.kwargs!r}.") from None
    return row.func, args if isinstance(args, tuple) else (args,), kwargs if isinstance(kwargs, dict) else {}


def schedule_run(*, name: str, actor: str = "") -> str:
    """Run the named schedule's function now, in this process, and return its result as text. The
    schedule's own next run is left as it is. Work the function queues (a training job) goes to the
    task queue as usual."""
    func, args, kwargs = _target(name)
    logger.info("schedule %s run now by %s", name, actor or "someone")
    result = import_string(func)(*args, **kwargs)
    return "(no result)" if result is None else str(result)
