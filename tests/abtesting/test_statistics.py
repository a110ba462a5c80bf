"""Every statistic checked against scipy, and the sequential test against peeking."""

from __future__ import annotations

import random

import pytest
from scipy import stats as scipy_stats

from abtesting import statistics as st


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (50, 100), (65, 100), (99, 100), (7, 7), (120, 300)])
def test_wilson_matches_scipy(k, n):
    expected = scipy_stats.binomtest(k, n).proportion_ci(method="wilson")
    assert st.wilson(k, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


@pytest.mark.parametrize(
    ("k", "n", "p"), [(0, 10, 0.5), (3, 10, 0.5), (60, 100, 0.5), (70, 100, 0.5), (5, 40, 0.3), (250, 300, 0.5), (1, 1, 0.5)]
)
def test_the_exact_binomial_test_matches_scipy(k, n, p):
    assert st.binomial_test(k, n, p) == pytest.approx(scipy_stats.binomtest(k, n, p).pvalue, rel=1e-9, abs=1e-12)


def test_ties_are_stated_and_handled_explicitly():
    excluded = st.win_rate(60, 30, 10)
    assert (excluded.rate, excluded.ties, excluded.tie_share) == (pytest.approx(60 / 90), 10, 0.1)
    half = st.win_rate(60, 30, 10, ties_as="half")
    assert half.rate == pytest.approx(65 / 100)
    with pytest.raises(ValueError, match="ties_as"):
        st.win_rate(1, 1, 1, ties_as="ignore")


@pytest.mark.parametrize(
    ("observed", "shares"), [([500, 500], [1, 1]), ([820, 180], [0.8, 0.2]), ([4500, 5500], [1, 1]), ([30, 70, 100], [1, 1, 2])]
)
def test_the_sample_ratio_check_matches_scipy(observed, shares):
    total = sum(observed)
    expected = [s * total / sum(shares) for s in shares]
    reference = scipy_stats.chisquare(observed, expected)
    statistic, p = st.sample_ratio_mismatch(observed, shares)
    assert statistic == pytest.approx(reference.statistic)
    assert p == pytest.approx(reference.pvalue, rel=1e-7, abs=1e-300)


def test_a_broken_canary_split_raises_the_alarm():
    assert st.sample_ratio_mismatch([4500, 5500], [1, 1])[1] < 0.001
    assert st.sample_ratio_mismatch([5020, 4980], [1, 1])[1] > 0.001


@pytest.mark.parametrize(("df", "x"), [(1, 0.5), (1, 10.8), (2, 3.0), (5, 1.2), (9, 20.0), (30, 25.0)])
def test_chi_square_tail_matches_scipy(df, x):
    assert st.chi2_sf(x, df) == pytest.approx(scipy_stats.chi2.sf(x, df), rel=1e-9)


def test_the_guardrail_proportion_test_matches_scipy():
    # a one-sided pooled two-proportion z-test is the square root of the 2x2 chi-square
    p = st.proportion_worse(30, 500, 12, 500)
    table = [[30, 470], [12, 488]]
    _, two_sided, _, _ = scipy_stats.chi2_contingency(table, correction=False)
    assert p == pytest.approx(two_sided / 2)
    assert st.proportion_worse(10, 500, 30, 500) > 0.5


def test_the_mixture_ratio_is_a_likelihood_ratio_against_one_half():
    # with a uniform prior, the marginal likelihood of k wins in n is 1 / ((n + 1) * C(n, k))
    from math import comb

    assert st.mixture_likelihood_ratio(7, 10) == pytest.approx((1 / (11 * comb(10, 7))) / 0.5**10)


def test_the_sequential_test_survives_peeking_where_the_naive_test_does_not():
    """2,000 A/A experiments (no real difference), looked at 30 times each."""
    rng = random.Random(42)
    looks = range(10, 301, 10)
    sequential_false, naive_false = 0, 0
    for _ in range(2000):
        history = [rng.random() < 0.5 for _ in range(300)]
        wins, best, naive_hit = 0, 1.0, False
        for n, won in enumerate(history, start=1):
            wins += won
            best = max(best, st.mixture_likelihood_ratio(wins, n))
            if n in looks and not naive_hit and st.binomial_test(wins, n) < 0.05:
                naive_hit = True
        sequential_false += 1 / best < 0.05
        naive_false += naive_hit
    assert sequential_false / 2000 <= 0.05
    assert naive_false / 2000 >= 0.20


def test_the_sequential_test_finds_a_real_difference():
    rng = random.Random(7)
    history = [rng.random() < 0.75 for _ in range(200)]
    assert st.always_valid_p(history) < 0.001


def test_recommendations():
    rng = random.Random(3)
    strong = ["B" if rng.random() < 0.8 else "A" for _ in range(150)] + ["tie"] * 10
    assert st.recommend(strong).decision == "promote_challenger"
    assert st.recommend(strong[:50]).decision == "need_more_data"
    weak = ["A" if rng.random() < 0.8 else "B" for _ in range(150)]
    assert st.recommend(weak).decision == "keep_control"
    even = ["A", "B"] * 75
    assert st.recommend(even).decision == "need_more_data"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_matches_scipy(seed):
    rng = random.Random(seed)
    first = [rng.choice([1, 2, 3, 4, 5]) for _ in range(rng.randint(5, 80))]
    second = [rng.choice([2, 3, 4, 5, 5]) for _ in range(rng.randint(5, 80))]
    reference = scipy_stats.ttest_ind(first, second, equal_var=False, alternative="less")
    result = st.welch_lower(first, second)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-9)
    assert result.df == pytest.approx(reference.df, rel=1e-9)
    assert result.p_lower == pytest.approx(reference.pvalue, rel=1e-7)


@pytest.mark.parametrize(("t", "df"), [(0.0, 3), (1.5, 2.5), (-2.2, 10), (4.0, 60.3), (0.3, 1)])
def test_the_t_tail_matches_scipy(t, df):
    assert st.t_sf(t, df) == pytest.approx(scipy_stats.t.sf(t, df), rel=1e-9)


def test_welch_needs_two_values_a_side_and_handles_no_spread():
    assert st.welch_lower([5], [1, 2]).p_lower == 1.0
    assert st.welch_lower([3, 3], [3, 3]).p_lower == 1.0
    assert st.welch_lower([1, 1], [5, 5]).p_lower == 0.0


def test_a_losing_challenger_is_never_promoted_whatever_the_bar():
    history = ["A"] * 80 + ["B"] * 20
    assert st.recommend(history, min_win_rate=0.1).decision == "keep_control"
