from __future__ import annotations

import pytest
from django.core.management import call_command
from django_q.models import Schedule
from django_q.tasks import async_task

from interactions.models import Interaction
from registry.models import ModelVersion, VersionStats
from registry.stats import percentile, stats_refresh, trust
from tests.factories import FeedbackFactory, InteractionFactory

pytestmark = pytest.mark.django_db


def test_trust_is_the_wilson_lower_bound_of_the_share_of_accepted_answers():
    from abtesting.statistics import wilson

    assert trust(accepted=0, judged=0) == 0.0, "nothing judged: no trust"
    assert trust(accepted=0, judged=50) == 0.0, "every answer rejected"
    assert trust(accepted=40, judged=50) == round(wilson(40, 50)[0], 4)
    assert trust(accepted=9, judged=10) < trust(accepted=90, judged=100) < 0.9, "more evidence, a tighter bound"
    assert trust(accepted=100, judged=100) > 0.96


def test_percentiles_interpolate():
    assert percentile([], 0.5) is None
    assert percentile([10, 20, 30, 40], 0.5) == 25.0
    assert percentile(list(range(1, 101)), 0.95) == 95.0  # 95.05, to 0.1 ms


def test_performance_lists_versions_most_trusted_first(make_api):
    for number in (1, 2):
        ModelVersion.objects.create(task="support", name=f"m-support-v{number}", number=number, base_model="m")
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
    assert best["trust"] == trust(accepted=10, judged=10), "ten fives, nothing against"
    assert worst["trust"] == 0.0, "failures and thumbs down only"


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


def feedback(api, interaction, **body) -> None:
    answer = api.post(f"/api/v1/interactions/{interaction.pk}/feedback", body, format="json")
    assert answer.status_code == 201, answer.content


def served(api, version: str, count: int) -> list:
    return [InteractionFactory(client=api.client_obj, task="support", model_version=version, outcome="success") for _ in range(count)]


def trust_of(version: str) -> float:
    stats_refresh(task="support")
    return VersionStats.objects.get(task="support", version=version).trust


def test_trust_falls_as_corrections_arrive(make_api):
    api = make_api()
    version = ModelVersion.objects.create(task="support", name="m-support-v1", number=1, base_model="m")
    answers = served(api, version.name, 30)
    assert trust_of(version.name) == 0.0, "nobody judged an answer yet"
    for interaction in answers:
        feedback(api, interaction, kind="thumb", thumb="up")
    trusted = trust_of(version.name)
    assert trusted > 0.85
    seen = [trusted]
    for start in (0, 10, 20):  # users correct the answers, ten at a time (after their thumbs up)
        for interaction in answers[start : start + 10]:
            feedback(api, interaction, kind="correction", correction="the right answer")
        seen.append(trust_of(version.name))
    assert seen == sorted(seen, reverse=True), seen
    assert len(set(seen)) == 4, seen
    assert seen[-1] == 0.0, "a version whose every answer was corrected has no trust"
    for interaction in answers[:5]:  # thumbs down count against a version too
        feedback(api, interaction, kind="thumb", thumb="down")
    other = ModelVersion.objects.create(task="support", name="m-support-v2", number=2, base_model="m")
    rated = served(api, other.name, 10)
    for interaction in rated[:5]:
        feedback(api, interaction, kind="thumb", thumb="down")
    for interaction in rated[5:]:
        feedback(api, interaction, kind="score", score=5)
    assert trust_of(other.name) == trust(accepted=5, judged=10)


def test_an_external_label_is_not_scored_and_comes_after_the_known_versions(make_api):
    api = make_api()
    known = ModelVersion.objects.create(task="support", name="m-support-v1", number=1, base_model="m")
    for label, count in ((known.name, 3), ("gpt-external", 60)):
        for interaction in served(api, label, count):
            feedback(api, interaction, kind="thumb", thumb="up")
    stats_refresh()
    rows = make_api(scopes=("admin",)).get("/api/v1/models/performance", {"task": "support"}).json()
    assert [r["version"] for r in rows] == [known.name, "gpt-external"]
    assert rows[0]["trust"] == trust(accepted=3, judged=3) > 0
    assert rows[1]["calls"] == 60
    assert rows[1]["trust"] == 0.0, "counted, never trusted: the platform does not know it"
