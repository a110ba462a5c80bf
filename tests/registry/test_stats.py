from __future__ import annotations

import pytest

from registry.stats import percentile, trust
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
    rows = make_api(scopes=("admin",)).get("/api/v1/models/performance", {"task": "support"}).json()
    assert [r["version"] for r in rows] == ["m-support-v2", "m-support-v1"]
    best, worst = rows
    assert (best["calls"], best["errors"], best["tokens"], best["mean_feedback_score"]) == (60, 0, 600, 5.0)
    assert best["latency_p50_ms"] == 129.5
    assert worst["error_rate"] == round(20 / 60, 4)
    assert worst["thumbs_up_share"] == 0.0
    assert worst["latency_p95_ms"] == 300.0
