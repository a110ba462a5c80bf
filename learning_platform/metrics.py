"""`/metrics` in Prometheus' text format (prometheus-client).

Two sources: counters and histograms that each web process keeps for the requests it answered
(shared between gunicorn workers through PROMETHEUS_MULTIPROC_DIR, which `run_platform` sets),
and gauges read from the database at scrape time (jobs, queue, experiments, champion changes),
so every web process reports the same fleet-wide numbers. Off unless METRICS_TOKEN is set.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

VERSION_HEADER = "X-Model-Version"

REQUESTS = Counter(
    "lp_http_requests", "Requests answered, per door (URL name), method, status and model version.",
    ["door", "method", "status", "version"],
)  # fmt: skip
LATENCY = Histogram(
    "lp_http_request_duration_seconds", "Time to answer a request, per door and model version.", ["door", "version"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)  # fmt: skip


def _door(request: HttpRequest) -> str:
    """The URL pattern's name, never the raw path (a bounded set of label values)."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or "unnamed"


class MetricsMiddleware:
    """Counts and times every request by door and, for serving, by the version that answered."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        door, version = _door(request), response.get(VERSION_HEADER, "")
        REQUESTS.labels(door, request.method or "", str(response.status_code), version).inc()
        LATENCY.labels(door, version).observe(time.perf_counter() - start)
        return response


def _jobs() -> Iterator[Metric]:
    from django.db.models import Count, Min
    from django.db.models.functions import Coalesce

    from learning_platform.jobs import job_models

    states = GaugeMetricFamily("lp_jobs", "Jobs per kind and state.", labels=["kind", "state"])
    oldest = GaugeMetricFamily(
        "lp_job_oldest_heartbeat_age_seconds", "Seconds since the stalest running job of each kind beat its heart.", labels=["kind"]
    )
    now = timezone.now()
    for model in job_models():
        kind = model.job_kind
        counts = dict(model.objects.order_by().values_list("status").annotate(n=Count("pk")))
        for state in model.Status.values:
            states.add_metric([kind, state], counts.get(state, 0))
        running = model.objects.filter(status=model.Status.RUNNING)
        last = running.aggregate(t=Min(Coalesce("heartbeat_at", "started_at", "created_at")))["t"]
        oldest.add_metric([kind], (now - last).total_seconds() if last else 0.0)
    yield states
    yield oldest


def _queue() -> Iterator[Metric]:
    from django.db.models import Count
    from django_q.brokers import get_broker
    from django_q.models import Failure

    depth = GaugeMetricFamily("lp_queue_depth", "Tasks waiting in the django-q2 broker.")
    depth.add_metric([], get_broker().queue_size() or 0)
    yield depth
    failures = CounterMetricFamily(
        "lp_task_failures", "Failed tasks kept by django-q2 (its save limit caps the history), per function.", labels=["func"]
    )
    for func, n in Failure.objects.order_by().values_list("func").annotate(n=Count("pk")):
        failures.add_metric([func], n)
    yield failures


def _loop() -> Iterator[Metric]:
    from django.db.models import Count

    from abtesting.models import Experiment
    from registry.models import LifecycleEvent

    experiments = GaugeMetricFamily("lp_experiments_running", "Experiments running, per mode.", labels=["mode"])
    counts = dict(Experiment.objects.filter(status=Experiment.Status.RUNNING).order_by().values_list("mode").annotate(n=Count("pk")))
    for mode in Experiment.Mode.values:
        experiments.add_metric([mode], counts.get(mode, 0))
    yield experiments
    changes = CounterMetricFamily("lp_champion_changes", "Promotions and rollbacks, per task and action.", labels=["task", "action"])
    actions = (LifecycleEvent.Action.PROMOTE, LifecycleEvent.Action.ROLLBACK)
    rows = LifecycleEvent.objects.filter(action__in=actions).order_by().values_list("task", "action").annotate(n=Count("pk"))
    for task, action, n in rows:
        changes.add_metric([task, action], n)
    yield changes


class DatabaseCollector(Collector):
    """Fleet-wide gauges read from the database at scrape time (a few aggregate queries)."""

    def collect(self) -> Iterator[Metric]:
        yield from _jobs()
        yield from _queue()
        yield from _loop()


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessRegistry())
    registry.register(DatabaseCollector())
    return registry


class _ProcessRegistry(Collector):
    """This process's own request metrics (the default registry), when not in multiprocess mode."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def metrics_view(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        return JsonResponse({"detail": "Metrics are off: set METRICS_TOKEN to turn them on.", "code": "not_found"}, status=404)
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        response = JsonResponse({"detail": "Send Authorization: Bearer <METRICS_TOKEN>.", "code": "not_authenticated"}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
