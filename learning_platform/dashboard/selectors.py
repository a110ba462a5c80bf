"""The dashboard's reads: a bounded number of aggregate queries, whatever the table sizes.

Per query one `values(...).annotate(...)` over every task at once; the only per-task queries are
`training.services.readiness` (three each), so the count grows with the number of tasks, never
with the number of rows.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from abtesting.models import Experiment, Trial
from curation.models import TIERS, CurationRun, DatasetItem, TrainingExample
from interactions.models import Feedback, Interaction
from learning_platform.jobs import JobStatus, job_models
from registry.models import ActiveModel, LifecycleEvent, ModelVersion
from training.models import TrainingJob, TrainingPolicy
from training.services import readiness

ALERT_DAYS = 7  # failed jobs and stopped experiments of the last week raise an alert
EVENTS_SHOWN = 8
CURATION_RUNS_SHOWN = 20
EMPTY_FUNNEL = {"interactions": 0, "with_feedback": 0, "tiers": [(t, 0) for t in TIERS], "examples": 0, "in_dataset": 0, "trained": 0}
OPEN_EXPERIMENTS = (Experiment.Status.RUNNING, Experiment.Status.AWAITING_APPROVAL)


def _by_task(rows: Any, key: str = "task") -> dict[str, int]:
    return {row[key]: row["n"] for row in rows}


def funnel() -> dict[str, dict[str, Any]]:
    """Per task: interactions -> with feedback -> examples by tier -> in a dataset -> trained."""
    # one scan of the interactions; the ids with feedback are hashed once (a hashed subplan)
    with_feedback = Q(pk__in=Feedback.objects.order_by().values("interaction_id"))
    rows = Interaction.objects.order_by().values("task").annotate(n=Count("pk"), fed=Count("pk", filter=with_feedback))
    interactions, with_feedback_counts = {}, {}
    for row in rows:
        interactions[row["task"]], with_feedback_counts[row["task"]] = row["n"], row["fed"]
    tiers: dict[str, dict[str, int]] = defaultdict(dict)
    examples = TrainingExample.objects.order_by().filter(duplicate_of__isnull=True).values("task", "tier").annotate(n=Count("pk"))
    for row in examples:
        tiers[row["task"]][row["tier"]] = row["n"]
    items = DatasetItem.objects.order_by().filter(dataset__status="frozen", dataset__tainted=False)
    in_dataset = _by_task(items.values("dataset__task").annotate(n=Count("source_interaction_id", distinct=True)), "dataset__task")
    trained_items = items.filter(dataset__training_jobs__status=JobStatus.SUCCEEDED)
    trained = _by_task(trained_items.values("dataset__task").annotate(n=Count("source_interaction_id", distinct=True)), "dataset__task")
    tasks = set(interactions) | set(tiers) | set(in_dataset)
    return {
        task: {
            "interactions": interactions.get(task, 0),
            "with_feedback": with_feedback_counts.get(task, 0),
            "tiers": [(tier, tiers[task].get(tier, 0)) for tier in TIERS],
            "examples": sum(tiers[task].values()),
            "in_dataset": in_dataset.get(task, 0),
            "trained": trained.get(task, 0),
        }
        for task in tasks
    }


def _champions() -> dict[str, ActiveModel]:
    return {row.task: row for row in ActiveModel.objects.select_related("version")}


def _running_jobs() -> dict[str, TrainingJob]:
    jobs = TrainingJob.objects.filter(status__in=[JobStatus.RUNNING, JobStatus.QUEUED]).select_related("dataset")
    found: dict[str, TrainingJob] = {}
    for job in jobs.order_by("status", "-created_at").defer("log_tail", "error", "recipe_notes"):
        found.setdefault(job.task, job)  # running before queued, the newest first
    return found


def _open_experiments() -> dict[str, Experiment]:
    rows = Experiment.objects.filter(status__in=OPEN_EXPERIMENTS).select_related("challenger", "control")
    return {e.task: e for e in rows}


def experiment_histories(experiment_ids: list[int]) -> dict[int, list[str]]:
    """The verdicts of each experiment's trials, in order (one query)."""
    histories: dict[int, list[str]] = defaultdict(list)
    trials = Trial.objects.filter(experiment_id__in=experiment_ids).order_by("experiment_id", "created_at", "id")
    for experiment_id, verdict in trials.values_list("experiment_id", "verdict"):
        histories[experiment_id].append(verdict)
    return histories


def _events() -> dict[str, list[LifecycleEvent]]:
    grouped: dict[str, list[LifecycleEvent]] = defaultdict(list)
    for event in LifecycleEvent.objects.select_related("from_version", "to_version")[: EVENTS_SHOWN * 10]:
        if len(grouped[event.task]) < EVENTS_SHOWN:
            grouped[event.task].append(event)
    return grouped


def _job_url(job: Any) -> str:
    meta = type(job)._meta
    return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[job.pk])


def job_alerts(now: Any = None) -> list[dict[str, str]]:
    """Failed jobs of the last week, running jobs whose heart stopped and queued jobs no worker
    took (a stale worker): one query per kind of job."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    since = now - timedelta(days=ALERT_DAYS)
    wanted = (
        Q(status=JobStatus.FAILED, finished_at__gte=since)
        | Q(status=JobStatus.RUNNING, heartbeat_at__lt=stale)
        | Q(status=JobStatus.QUEUED, created_at__lt=stale)
    )
    alerts = []
    for model in job_models():
        for job in model.objects.filter(wanted).only("pk", "status", "error", "heartbeat_at", "created_at").order_by("-created_at")[:5]:
            alerts.append(_job_alert(model, job, now))
    return alerts


def _job_alert(model: Any, job: Any, now: Any) -> dict[str, str]:
    name = f"{model._meta.verbose_name} {job.pk}"
    if job.status == JobStatus.FAILED:
        text = f"{name} failed: {(job.error.splitlines() or ['no reason recorded'])[0][:200]}"
    elif job.status == JobStatus.RUNNING:
        age = (now - job.heartbeat_at).total_seconds()
        text = f"{name} is running but its heart stopped {age:.0f} s ago: the worker is stale (the reaper will fail it)"
    else:
        age = (now - job.created_at).total_seconds() / 60
        text = f"{name} has been queued for {age:.0f} min: no worker is taking jobs"
    return {"level": "error" if job.status == JobStatus.FAILED else "warning", "text": text, "url": _job_url(job)}


def _srm_alerts(now: Any) -> list[dict[str, str]]:
    stopped = Experiment.objects.filter(
        status=Experiment.Status.STOPPED, stats__sample_ratio__alarm=True, ended_at__gte=now - timedelta(days=ALERT_DAYS)
    ).only("pk", "task", "reason")
    return [
        {"level": "error", "text": f"experiment {e.pk} ({e.task}) was stopped by its sample-ratio check: {e.reason}",
         "url": reverse("admin:abtesting_experiment_change", args=[e.pk])}
        for e in stopped
    ]  # fmt: skip


def _taint_alerts(champions: dict[str, ActiveModel]) -> list[dict[str, str]]:
    return [
        {"level": "error", "text": f"the champion of {task}, {row.version.name}, is tainted and never serves: "
         f"{row.version.tainted_reason[:200]}", "url": reverse("admin:registry_modelversion_change", args=[row.version_id])}
        for task, row in sorted(champions.items()) if row.version.tainted
    ]  # fmt: skip


def _genealogy(versions: list[dict[str, Any]], champion_ids: set[int]) -> dict[str, list[dict[str, Any]]]:
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for v in versions:
        by_task[v["task"]].append({**v, "champion": v["id"] in champion_ids})
    return by_task


def _versions() -> list[dict[str, Any]]:
    fields = ("id", "task", "name", "number", "parent_id", "status", "tainted")
    return list(ModelVersion.objects.order_by("task", "number", "id").values(*fields))


def curation_runs() -> list[dict[str, Any]]:
    rows = CurationRun.objects.filter(status=JobStatus.SUCCEEDED).order_by("-created_at")[:CURATION_RUNS_SHOWN]
    return list(reversed(rows.values("pk", "task", "counts", "created_at")))


def _cached(key: str, compute: Any) -> Any:
    """The slow aggregates (full scans of the big tables) at most once per DASHBOARD_CACHE_SECONDS."""
    seconds = settings.DASHBOARD_CACHE_SECONDS
    return cache.get_or_set(key, compute, seconds) if seconds else compute()


def _counts(tasks: set[str]) -> dict[str, Any]:
    counts = funnel()
    every = sorted(tasks | set(counts))
    return {"funnel": counts, "readiness": {task: readiness(task=task) for task in every}, "as_of": timezone.now()}


def dashboard(now: Any = None) -> dict[str, Any]:
    """Everything the dashboard shows, per task, and the alerts."""
    now = now or timezone.now()
    champions = _champions()
    jobs, experiments, events = _running_jobs(), _open_experiments(), _events()
    histories = experiment_histories([e.pk for e in experiments.values()])
    versions = _versions()
    tree = _genealogy(versions, {row.version_id for row in champions.values()})
    policies = set(TrainingPolicy.objects.values_list("task", flat=True))
    known = set(champions) | set(tree) | policies | set(jobs) | set(experiments)
    slow = _cached("dashboard:counts", lambda: _counts(known))
    counts, ready = slow["funnel"], slow["readiness"]
    tasks = sorted(known | set(counts))
    alerts = _taint_alerts(champions) + job_alerts(now) + _srm_alerts(now)
    return {
        "alerts": alerts,
        "tasks": [
            {
                "task": task,
                "funnel": counts.get(task) or EMPTY_FUNNEL,
                "champion": champions.get(task),
                "champion_age": now - champions[task].updated_at if task in champions else None,
                "readiness": ready.get(task) or readiness(task=task),
                "job": jobs.get(task),
                "experiment": experiments.get(task),
                "events": events.get(task, []),
                "genealogy": tree.get(task, []),
            }
            for task in tasks
        ],
        "curation_runs": curation_runs(),
        "histories": histories,
        "counts_as_of": slow["as_of"],
    }
