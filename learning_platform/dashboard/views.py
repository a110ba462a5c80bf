"""The staff dashboard (the admin's index), its live JSON and the site root."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe

from abtesting.models import Experiment
from training.models import TrainingJob

from . import selectors, series
from .live import experiment_live, job_live, trials_html

POLL_SECONDS = 3
LIVE_IDS = 20  # at most this many jobs and experiments per poll


def home(request: HttpRequest) -> HttpResponse:
    """`/`: staff to the dashboard, other browsers to the login, API clients to the API's docs."""
    if request.user.is_active and request.user.is_staff:
        return redirect("admin:index")
    if "text/html" not in request.headers.get("Accept", ""):
        return JsonResponse({"detail": "This is the learning platform's API.", "docs": "/api/docs/", "schema": "/api/schema/"})
    return redirect(f"{reverse('admin:login')}?next={reverse('admin:index')}")


def _version_url(pk: int) -> str:
    return reverse("admin:registry_modelversion_change", args=[pk])


def genealogy_svg(task: str, rows: list[dict[str, Any]]) -> str:
    rows = [{**r, "url": _version_url(r["id"])} for r in rows]
    return mark_safe(series.genealogy_chart(rows, title=f"Genealogy of {task}", chart_id=f"genealogy-{task}"))  # noqa: S308


def _task_context(row: dict[str, Any], histories: dict[int, list[str]]) -> dict[str, Any]:
    job, experiment = row["job"], row["experiment"]
    live_experiment = experiment_live(experiment, histories.get(experiment.pk, [])) if experiment else None
    safe = {"chart", "win_chart", "p_chart"}
    return {
        **row,
        "genealogy_svg": genealogy_svg(row["task"], row["genealogy"]),
        "job_live": {k: mark_safe(v) if k in safe else v for k, v in job_live(job).items()} if job else None,  # noqa: S308
        "experiment_live": {k: mark_safe(v) if k in safe else v for k, v in live_experiment.items()}  # noqa: S308
        if live_experiment
        else None,
    }


def dashboard(request: HttpRequest) -> TemplateResponse:
    data = selectors.dashboard()
    histories = data["histories"]
    context = {
        **admin.site.each_context(request),
        "title": "Control room",
        "alerts": data["alerts"],
        "counts_as_of": data["counts_as_of"],
        "cache_seconds": settings.DASHBOARD_CACHE_SECONDS,
        "tasks": [_task_context(row, histories) for row in data["tasks"]],
        "curation_svg": mark_safe(series.curation_chart(data["curation_runs"], chart_id="curation-runs")),  # noqa: S308
        "poll_seconds": POLL_SECONDS,
    }
    return TemplateResponse(request, "dashboard/index.html", context)


def _ids(request: HttpRequest, name: str) -> list[int]:
    return [int(v) for v in request.GET.getlist(name)[:LIVE_IDS] if v.isdigit()]


def live(request: HttpRequest) -> JsonResponse:
    """GET ?job=<id>&experiment=<id> (repeatable), &trials=1 for the experiments' latest trials:
    each one's progress and its charts' SVG."""
    if not (request.user.is_active and request.user.is_staff):
        return JsonResponse({"detail": "Staff only."}, status=403)
    jobs = TrainingJob.objects.filter(pk__in=_ids(request, "job")).defer("log_tail", "error", "recipe_notes", "recipe")
    experiments = Experiment.objects.filter(pk__in=_ids(request, "experiment"))
    histories = selectors.experiment_histories([e.pk for e in experiments])
    with_trials = request.GET.get("trials") == "1"  # the experiment's page shows its latest trials; the dashboard does not

    def trials(experiment: Experiment) -> dict[str, str]:
        return {"trials_html": trials_html(experiment)} if with_trials else {}

    payload = {
        "jobs": {str(job.pk): job_live(job) for job in jobs},
        "experiments": {str(e.pk): {**experiment_live(e, histories.get(e.pk, [])), **trials(e)} for e in experiments},
        "poll_seconds": POLL_SECONDS,
    }
    return JsonResponse(payload)
