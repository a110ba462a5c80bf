"""After a promotion, a champion that does worse than its predecessor is rolled back by itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from abtesting import tasks
from interactions.models import Interaction
from registry import services
from registry.models import ActiveModel, LifecycleEvent
from tests.factories import ApiClientFactory
from tests.registry.test_lifecycle import fake_version

pytestmark = pytest.mark.django_db


def traffic(version, count, failures, *, hours_ago, latency=100):
    client = ApiClientFactory()
    stamp = timezone.now() - timedelta(hours=hours_ago)
    rows = [Interaction(client=client, task=version.task, input_text="q", messages=[], model_version=version.name, latency_ms=latency,
                        outcome="failure" if i < failures else "success") for i in range(count)]  # fmt: skip
    Interaction.objects.bulk_create(rows)
    Interaction.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=stamp)


@pytest.fixture
def promoted():
    old = fake_version("support", 1, status="approved")
    new = fake_version("support", 2, status="approved")
    services.version_promote(version=old, actor="staff")
    services.version_promote(version=new, actor="staff")
    LifecycleEvent.objects.filter(action="promote", to_version=new).update(created_at=timezone.now() - timedelta(hours=12))
    traffic(old, 200, 4, hours_ago=20)  # 2% errors before the promotion
    return old, new


def test_a_champion_with_a_worse_error_rate_is_rolled_back_with_the_reason(promoted):
    old, new = promoted
    traffic(new, 200, 40, hours_ago=6)  # 20% after
    assert tasks.hourly_guardrails() == "support: rolled back"
    assert ActiveModel.objects.get(task="support").version == old
    event = LifecycleEvent.objects.filter(action="rollback").get()
    assert event.actor == "guardrails"
    assert "error rate 20.0% vs 2.0%" in event.reason


def test_a_healthy_champion_stays(promoted):
    _old, new = promoted
    traffic(new, 200, 5, hours_ago=6)
    assert tasks.hourly_guardrails() == "support: healthy"
    assert ActiveModel.objects.get(task="support").version == new


def test_too_little_traffic_decides_nothing(promoted):
    _, new = promoted
    traffic(new, 10, 10, hours_ago=6)
    assert tasks.hourly_guardrails() == "support: need more data"


def test_a_much_slower_champion_is_rolled_back(promoted):
    _, new = promoted
    traffic(new, 200, 4, hours_ago=6, latency=400)
    assert tasks.hourly_guardrails() == "support: rolled back"
    assert "p95 latency 400 ms vs 100 ms" in LifecycleEvent.objects.get(action="rollback").reason


def test_auto_rollback_can_be_turned_off(promoted, settings):
    settings.AUTO_ROLLBACK = False
    _, new = promoted
    traffic(new, 200, 40, hours_ago=6)
    assert tasks.hourly_guardrails() == "support: worse"
    assert ActiveModel.objects.get(task="support").version == new


def test_a_champion_with_worse_feedback_is_rolled_back_by_the_welch_test(promoted):
    from interactions.models import Feedback

    old, new = promoted
    traffic(new, 200, 4, hours_ago=6)  # errors unchanged
    for version, scores in ((old, [4, 5, 5, 4, 3]), (new, [2, 3, 1, 2, 3])):
        rows = list(Interaction.objects.filter(model_version=version.name)[:100])
        Feedback.objects.bulk_create(Feedback(interaction=row, kind="score", score=scores[i % 5]) for i, row in enumerate(rows))
    assert tasks.hourly_guardrails() == "support: rolled back"
    event = LifecycleEvent.objects.filter(action="rollback").get()
    assert "mean feedback 2.20 vs 4.20 of 5 (Welch t = " in event.reason
