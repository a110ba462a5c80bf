"""Statistics for experiments: plain numbers in, plain numbers out (no Django, no scipy at run
time; tests check every function against scipy).

- win rate with ties stated and handled explicitly, and a Wilson 95% interval;
- the exact two-sided binomial test;
- a sequential test that may be looked at after every trial: a beta-binomial mixture likelihood
  ratio (an mSPRT). Under H0 (p = 0.5) it is a non-negative martingale, so by Ville's inequality
  the chance it ever exceeds 1/alpha is at most alpha, however often one looks;
- the sample-ratio-mismatch check (chi-square goodness of fit);
- a one-sided two-proportion z-test for guardrails (error rates) and Welch's t-test (mean feedback).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class WinRate:
    wins: int
    losses: int
    ties: int
    rate: float  # wins / decided (ties excluded), or (wins + ties / 2) / all with ties="half"
    low: float
    high: float
    tie_share: float


def wilson(successes: float, trials: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (0..1 when there are no trials)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def win_rate(wins: int, losses: int, ties: int, *, ties_as: str = "exclude") -> WinRate:
    """The challenger's win rate. Ties are reported, and either left out of the rate (default)
    or counted as half a win each (`ties_as="half"`)."""
    total = wins + losses + ties
    if ties_as == "half":
        successes, trials = wins + ties / 2, total
    elif ties_as == "exclude":
        successes, trials = wins, wins + losses
    else:
        raise ValueError("ties_as must be 'exclude' or 'half'")
    rate = successes / trials if trials else 0.5
    low, high = wilson(successes, trials)
    return WinRate(wins, losses, ties, rate, low, high, ties / total if total else 0.0)


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * math.log(p) + (n - k) * math.log1p(-p)


def binomial_test(successes: int, trials: int, p: float = 0.5) -> float:
    """Exact two-sided p-value: the probability of outcomes no more likely than the observed."""
    if trials == 0:
        return 1.0
    observed = _log_binom_pmf(successes, trials, p)
    tolerance = 1e-7 * abs(observed) + 1e-12
    total = sum(math.exp(lp) for k in range(trials + 1) if (lp := _log_binom_pmf(k, trials, p)) <= observed + tolerance)
    return min(1.0, total)


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def mixture_likelihood_ratio(successes: int, trials: int, *, p0: float = 0.5, prior: float = 1.0) -> float:
    """Beta(prior, prior)-mixture likelihood ratio of `successes` in `trials` against p0."""
    log_ratio = _log_beta(prior + successes, prior + trials - successes) - _log_beta(prior, prior)
    log_ratio -= successes * math.log(p0) + (trials - successes) * math.log1p(-p0)
    return math.exp(min(log_ratio, 700.0))


def always_valid_p(history: Sequence[bool], *, prior: float = 1.0) -> float:
    """The sequential p-value after every decided trial so far (True = the challenger won):
    1 / the largest mixture likelihood ratio seen. Reject H0 when it is below alpha."""
    best, wins = 1.0, 0
    for trials, won in enumerate(history, start=1):
        wins += won
        best = max(best, mixture_likelihood_ratio(wins, trials, prior=prior))
    return min(1.0, 1.0 / best)


def _regularized_upper_gamma(s: float, x: float) -> float:
    """Q(s, x) = Gamma(s, x) / Gamma(s): series below s + 1, continued fraction above."""
    if x <= 0:
        return 1.0
    if x < s + 1:
        term = total = 1.0 / s
        a = s
        for _ in range(1000):
            a += 1
            term *= x / a
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return 1.0 - total * math.exp(-x + s * math.log(x) - math.lgamma(s))
    b, c, d = x + 1 - s, 1e300, 1.0 / (x + 1 - s)
    h = d
    for i in range(1, 1000):
        an = -i * (i - s)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1.0 / d
        h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h * math.exp(-x + s * math.log(x) - math.lgamma(s))


def chi2_sf(statistic: float, df: int) -> float:
    return _regularized_upper_gamma(df / 2, statistic / 2)


def sample_ratio_mismatch(observed: Sequence[int], expected_shares: Sequence[float]) -> tuple[float, float]:
    """Chi-square goodness of fit of the arms' sizes against the intended split: (statistic, p).
    Alarm when p < 0.001: the assignment is broken and the experiment's numbers cannot be trusted."""
    total = sum(observed)
    if total == 0:
        return 0.0, 1.0
    expected = [share * total / sum(expected_shares) for share in expected_shares]
    statistic = sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))
    return statistic, chi2_sf(statistic, len(observed) - 1)


def normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def proportion_worse(bad_new: int, n_new: int, bad_old: int, n_old: int) -> float:
    """One-sided p-value that the new rate (errors, say) is higher than the old (pooled z-test)."""
    if not n_new or not n_old:
        return 1.0
    pooled = (bad_new + bad_old) / (n_new + n_old)
    if pooled in (0.0, 1.0):
        return 1.0
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_new + 1 / n_old))
    return normal_sf((bad_new / n_new - bad_old / n_old) / se)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (tiny if abs(d) < tiny else d)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (tiny if abs(d) < tiny else d)
            c = 1.0 + numerator / c
            c = tiny if abs(c) < tiny else c
            h *= d * c
        if abs(d * c - 1) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with df degrees of freedom."""
    tail = 0.5 * betainc(df / 2, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


@dataclass(frozen=True)
class Welch:
    statistic: float
    df: float
    p_lower: float  # one-sided: the first mean is lower than the second


def welch_lower(first: Sequence[float], second: Sequence[float]) -> Welch:
    """Welch's unequal-variance t-test, one-sided: is the first sample's mean lower (worse
    feedback, say) than the second's? Needs two values on each side."""
    n1, n2 = len(first), len(second)
    if n1 < 2 or n2 < 2:
        return Welch(0.0, 0.0, 1.0)
    m1, m2 = sum(first) / n1, sum(second) / n2
    v1 = sum((x - m1) ** 2 for x in first) / (n1 - 1)
    v2 = sum((x - m2) ** 2 for x in second) / (n2 - 1)
    se2 = v1 / n1 + v2 / n2
    if se2 == 0:
        return Welch(0.0, float(n1 + n2 - 2), 1.0 if m1 >= m2 else 0.0)
    statistic = (m1 - m2) / math.sqrt(se2)
    df = se2**2 / ((v1 / n1) ** 2 / (n1 - 1) + (v2 / n2) ** 2 / (n2 - 1))
    return Welch(statistic, df, 1.0 - t_sf(statistic, df))


@dataclass(frozen=True)
class Recommendation:
    decision: str  # promote_challenger | keep_control | need_more_data
    reason: str
    win_rate: WinRate
    p_value: float


def recommend(history: Sequence[str], *, min_trials: int = 100, min_win_rate: float = 0.65, alpha: float = 0.05) -> Recommendation:
    """From verdicts in order ("B" challenger won, "A" control won, "tie"): promote the challenger
    when there are enough trials, its win rate clears the bar and the sequential test is
    significant; keep the control when the control is significantly better; else wait."""
    decided = [v == "B" for v in history if v in ("A", "B")]
    rate = win_rate(decided.count(True), decided.count(False), sum(1 for v in history if v == "tie"))
    p_value = always_valid_p(decided)
    if len(history) < min_trials:
        return Recommendation("need_more_data", f"{len(history)} of {min_trials} trials", rate, p_value)
    if p_value < alpha and rate.rate >= min_win_rate and rate.rate > 0.5:
        return Recommendation(
            "promote_challenger", f"win rate {rate.rate:.2f} >= {min_win_rate} and p = {p_value:.4f} < {alpha}", rate, p_value
        )
    if p_value < alpha and rate.rate < 0.5:
        return Recommendation(
            "keep_control", f"the control wins significantly (win rate {rate.rate:.2f}, p = {p_value:.4f})", rate, p_value
        )
    return Recommendation("need_more_data", f"win rate {rate.rate:.2f}, p = {p_value:.4f}: not yet conclusive", rate, p_value)
