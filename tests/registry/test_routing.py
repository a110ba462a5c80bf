"""The router's score, and routing a request by the capabilities it needs."""

from __future__ import annotations

import pytest

from registry import routing
from registry.models import ModelVersion, ServingRoute
from registry.serving import route
from registry.stats import stats_refresh
from tests.factories import InteractionFactory
from tests.registry.test_lifecycle import fake_version

R = routing.Route


def test_the_score_follows_the_documented_formula():
    code = R("code-v1", frozenset({"code", "sql"}), priority=3, trust=0.8, latency_p95_ms=1000, error_rate=0.1)
    assert routing.score(code, frozenset({"code", "sql", "poetry"})) == pytest.approx(2 * 3 + 0.4 - 0.5 - 0.2)
    slow = R("slow", frozenset(), priority=4, latency_p95_ms=10_000)
    assert routing.score(slow, frozenset()) == -2.0, "the latency penalty is capped at 2"


def test_pick_prefers_matching_capabilities_then_trust_then_priority():
    general = R("general", frozenset({"chat"}), priority=2, trust=0.9)
    coder = R("coder", frozenset({"code"}), priority=1, trust=0.2)
    assert routing.pick([general, coder], frozenset({"code"})) is coder
    assert routing.pick([general, coder], frozenset()) is general
    erring = R("erring", frozenset({"code"}), priority=1, trust=0.9, error_rate=0.9)
    assert routing.pick([coder, erring], frozenset({"code"})) is coder
    assert routing.pick([], frozenset({"x"})) is None
    twin_low, twin_high = R("a", frozenset(), priority=1), R("b", frozenset(), priority=3)
    assert routing.pick([twin_low, twin_high], frozenset()) is twin_high


@pytest.mark.django_db
def test_requests_are_routed_by_capability_and_stored_performance(django_assert_max_num_queries):
    general = fake_version("support", 1, status="approved")
    coder = fake_version("support", 2, status="approved")
    ServingRoute.objects.create(task="support", version=general, capabilities=["chat"], priority=2)
    ServingRoute.objects.create(task="support", version=coder, capabilities=["code"], priority=2)
    assert route("support", ["code"]) == coder
    assert route("support", ["chat"]) == general
    for _ in range(20):  # the general one fails a lot: with no capability asked, the coder wins
        InteractionFactory(task="support", model_version=general.name, outcome="failure", latency_ms=100)
        InteractionFactory(task="support", model_version=coder.name, outcome="success", latency_ms=100)
    assert route("support", []) == general, "a tie (no statistics yet) goes to the older version"
    stats_refresh()
    with django_assert_max_num_queries(4):  # the canary check, the routes, their statistics
        assert route("support", []) == coder
    coder.tainted = True
    coder.save()
    assert route("support", ["code"]) == general, "a tainted version is never routed to"


@pytest.mark.django_db
def test_a_route_names_a_version_of_its_task_that_may_serve(client, django_user_model):
    from django.core.exceptions import ValidationError

    mine = fake_version("support", 1, status="approved")
    for version, why in (
        (fake_version("legal", 1, status="approved"), "a version of 'legal', not of 'support'"),
        (fake_version("support", 2, status="rejected"), "is rejected and never serves"),
        (fake_version("support", 3, status="approved", tainted=True), "is tainted and never serves"),
    ):
        with pytest.raises(ValidationError, match=why):
            ServingRoute(task="support", version=version, priority=1).full_clean()
    ServingRoute(task="support", version=mine, priority=1).full_clean()
    client.force_login(django_user_model.objects.create_superuser("staff", "", "pw"))
    legal = ModelVersion.objects.get(name="base-legal-v1")
    form = {"task": "support", "capabilities": "[]", "priority": 1, "enabled": "on"}
    refused = client.post("/admin/registry/servingroute/add/", {**form, "version": legal.pk})
    assert refused.status_code == 200
    assert "not of &#x27;support&#x27;" in refused.content.decode()
    assert client.post("/admin/registry/servingroute/add/", {**form, "version": mine.pk}).status_code == 302
    assert list(ServingRoute.objects.values_list("version__name", flat=True)) == [mine.name]
