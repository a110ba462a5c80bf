"""/metrics: Prometheus' text format, behind METRICS_TOKEN, with request and fleet-wide figures."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

from curation.models import CurationRun
from registry.services import version_base, version_promote

TOKEN = "metrics-test-token"


@pytest.fixture
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_it_is_off_without_a_token(client, db, settings):
    settings.METRICS_TOKEN = ""
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.usefixtures("metrics_on")
@pytest.mark.parametrize("header", ["", "Bearer wrong", f"Basic {TOKEN}x"])
def test_it_refuses_a_missing_or_wrong_token(client, db, header):
    response = client.get("/metrics", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.usefixtures("metrics_on")
def test_it_reports_jobs_queue_experiments_and_champion_changes(client, db):
    now = timezone.now()
    CurationRun.objects.create(status="running", started_at=now - timedelta(minutes=5), heartbeat_at=now - timedelta(minutes=2))
    CurationRun.objects.create(status="running", started_at=now, heartbeat_at=now)
    CurationRun.objects.create(status="succeeded", started_at=now, finished_at=now)
    version_promote(version=version_base(task="support", base_model="tiny"), actor="test", reason="first")
    async_task("math.floor", 1.5, sync=False)

    samples = scrape(client)

    assert samples[("lp_jobs", (("kind", "curation_run"), ("state", "running")))] == 2
    assert samples[("lp_jobs", (("kind", "curation_run"), ("state", "succeeded")))] == 1
    assert samples[("lp_jobs", (("kind", "training_job"), ("state", "running")))] == 0
    age = samples[("lp_job_oldest_heartbeat_age_seconds", (("kind", "curation_run"),))]
    assert 119 < age < 600
    assert samples[("lp_job_oldest_heartbeat_age_seconds", (("kind", "eval_run"),))] == 0
    assert samples[("lp_queue_depth", ())] == 1
    assert samples[("lp_champion_changes_total", (("action", "promote"), ("task", "support")))] == 1
    assert samples[("lp_experiments_running", (("mode", "shadow"),))] == 0


@pytest.mark.usefixtures("metrics_on")
def test_it_counts_and_times_requests_per_door(client, api):
    def count() -> float:
        key = ("lp_http_requests_total", (("door", "interactions"), ("method", "GET"), ("status", "200"), ("version", "")))
        return scrape(client).get(key, 0.0)

    before = count()
    for _ in range(3):
        assert api.get("/api/v1/interactions").status_code == 200
    assert count() == before + 3
    samples = scrape(client)
    buckets = [v for (name, labels), v in samples.items() if name == "lp_http_request_duration_seconds_count"
               and ("door", "interactions") in labels]  # fmt: skip
    assert buckets
    assert sum(buckets) >= 3
    # an unknown path is counted under one label, not under its raw path
    client.get("/no/such/path/123")
    assert any(labels[0] == ("door", "unmatched") for (name, labels) in scrape(client) if name == "lp_http_requests_total")
