from __future__ import annotations

import pytest
from django.core.management import call_command
from django_q.models import Schedule
from django_q.tasks import async_task

from interactions.models import Interaction
from registry.models import VersionStats
from registry.stats import percentile, stats_refresh, trust
from tests.factories import FeedbackFactory, InteractionFactory

pytestmark = pytest.mark.django_db


def test_trust_rewards_satisfied_users_few_errors_and_enough_calls():
    assert trust(calls=0, errors=0, mean_score=None, thumbs_up_share=None) == 0.0
    assert trust(calls=100, errors=0, mean_score=5, thumbs_up_share=1.0) == 1.0
    assert trust(calls=100, errors=50, mean_score=5, thumbs_up_share=None) == 0.5
    assert trust(calls=100, errors=0, mean_score=None, thumbs_up_share=None) == 0.5
    assert trust(calls=5, errors=0, mean_score=5, thumbs_up_share=None) < trust(calls=50, errors=0, mean_score=5, thumbs_up_share=None)


def test_percentiles_interpolate():
    assert percentile([], 0.5) is None
    assert percentile([10, 20, 30, 40], 0.5) == 25.0
    assert percentile(list(range(1, 101)), 0.95) == 95.0  # 95.05, to 0.1 ms


def test_performance_lists_versions_most_trusted_first(make_api):
    good, bad = [], []
    for index in range(60):
        good.append(
            InteractionFactory(model_version="m-support-v2", task="support", latency_ms=100 + index, tokens_total=10, outcome="success")
        )
        bad.append(InteractionFactory(model_version="m-support-v1", task="support", latency_ms=300, tokens_total=10,
                                      outcome="failure" if index % 3 == 0 else "success"))  # fmt: skip
    for interaction in good[:10]:
        FeedbackFactory(interaction=interaction, kind="score", score=5)
    for interaction in bad[:10]:
        FeedbackFactory(interaction=interaction, kind="thumb", thumb="down", score=None)
    performance = make_api(scopes=("admin",)).get
    assert performance("/api/v1/models/performance").json() == [], "read from the rows, not computed per request"
    refresh_through_the_schedule()
    rows = performance("/api/v1/models/performance", {"task": "support"}).json()
    assert [r["version"] for r in rows] == ["m-support-v2", "m-support-v1"]
    best, worst = rows
    assert (best["calls"], best["errors"], best["tokens"], best["mean_feedback_score"]) == (60, 0, 600, 5.0)
    assert best["latency_p50_ms"] == 129.5
    assert worst["error_rate"] == round(20 / 60, 4)
    assert worst["thumbs_up_share"] == 0.0
    assert worst["latency_p95_ms"] == 300.0
    assert best["refreshed_at"] == worst["refreshed_at"]


def refresh_through_the_schedule() -> None:
    """What the django-q2 cluster does every minute: run the schedule's function."""
    call_command("setup_schedules", stdout=__import__("io").StringIO())
    schedule = Schedule.objects.get(name="refresh-version-stats")
    assert (schedule.schedule_type, schedule.minutes) == ("I", 1)
    async_task(schedule.func, sync=True)


def test_a_refresh_follows_new_and_erased_interactions():
    for _ in range(3):
        InteractionFactory(model_version="m-support-v1", task="support", latency_ms=100, outcome="success")
    InteractionFactory(model_version="m-legal-v1", task="legal", latency_ms=100)
    assert stats_refresh() == 2
    assert VersionStats.objects.get(version="m-support-v1").calls == 3
    InteractionFactory(model_version="m-support-v1", task="support", latency_ms=900, outcome="failure")
    assert VersionStats.objects.get(version="m-support-v1").calls == 3, "unchanged until the next refresh"
    assert stats_refresh(task="support") == 1
    row = VersionStats.objects.get(version="m-support-v1")
    assert (row.calls, row.errors, row.error_rate, row.latency_p95_ms) == (4, 1, 0.25, 780.0)
    Interaction.objects.filter(task="support").delete()  # an erasure
    stats_refresh(task="support")
    assert list(VersionStats.objects.values_list("version", flat=True)) == ["m-legal-v1"], "other tasks kept"
