from __future__ import annotations

from abtesting import arena


def rows(scores, latencies, categories=None):
    categories = categories or ["factual"] * len(scores)
    return [
        {"id": i, "category": c, "score": s, "latency_ms": lat}
        for i, (s, lat, c) in enumerate(zip(scores, latencies, categories, strict=True))
    ]


def test_quality_weighs_70_and_speed_30_per_case():
    # same quality, candidate twice as fast: 0.7 + 0.3 beats 0.7 + 0.15
    verdict = arena.compare(rows([0.5], [100]), rows([0.5], [200]))
    assert (verdict.wins, verdict.losses, verdict.passed) == (1, 0, True)
    # better quality but much slower: 0.7 * 0.6 + 0.3 * 0.25 = 0.495 < 0.7 * 0.5 + 0.3 = 0.65
    verdict = arena.compare(rows([0.6], [400]), rows([0.5], [100]))
    assert verdict.losses == 1
    verdict = arena.compare(rows([0.6], [400]), rows([0.5], [100]), quality_weight=1.0, speed_weight=0.0)
    assert verdict.wins == 1, "the weights are configurable"


def test_a_category_regression_fails_the_candidate_whatever_its_mean():
    categories = ["factual"] * 4 + ["coding"] * 2
    candidate = rows([1, 1, 1, 1, 0.2, 0.2], [100] * 6, categories)
    champion = rows([0.5, 0.5, 0.5, 0.5, 0.6, 0.6], [100] * 6, categories)
    verdict = arena.compare(candidate, champion)
    assert verdict.wins > verdict.losses
    assert verdict.regressions == {"coding": 0.4}
    assert not verdict.passed
    assert "regressed in coding" in verdict.reason
    assert arena.compare(candidate, champion, margin=0.5).passed


def test_ties_are_counted():
    verdict = arena.compare(rows([0.5, 0.5], [100, 100]), rows([0.5, 0.5], [100, 100]))
    assert (verdict.wins, verdict.losses, verdict.ties, verdict.passed) == (0, 0, 2, False)
