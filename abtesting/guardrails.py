"""Guardrails after a promotion: when the new champion's error rate, mean feedback or p95
latency is significantly worse than its predecessor's, roll back (AUTO_ROLLBACK, on by default)
with a lifecycle event that says why.

The predecessor is measured over GUARDRAIL_WINDOW_HOURS before the promotion, the champion over
the same span after it; each needs GUARDRAIL_MIN_CALLS calls. Rates are compared with a one-sided
two-proportion test, mean feedback (scores 1-5, a thumb up 5, down 1) with Welch's one-sided
t-test, both at GUARDRAIL_ALPHA; p95 latency is worse when above GUARDRAIL_LATENCY_RATIO x
the predecessor's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q

from interactions.models import Feedback, Interaction
from registry.models import ActiveModel, LifecycleEvent, ModelVersion
from registry.services import RegistryError, version_rollback
from registry.stats import percentile

from .statistics import proportion_worse, welch_lower


def _window(version: ModelVersion, start: datetime, end: datetime) -> dict[str, Any]:
    rows = Interaction.objects.filter(model_version=version.name, created_at__gte=start, created_at__lt=end)
    counts = rows.aggregate(calls=Count("id"), errors=Count("id", filter=Q(outcome="failure")))
    ratings = Feedback.objects.filter(interaction__in=rows).filter(Q(kind="score") | Q(kind="thumb"))
    values = [Feedback.rating(kind, score, thumb) for kind, score, thumb in ratings.values_list("kind", "score", "thumb")]
    latencies = list(rows.filter(latency_ms__isnull=False).values_list("latency_ms", flat=True))
    mean = round(sum(values) / len(values), 3) if values else None
    return {**counts, "ratings": len(values), "rating_values": values, "mean_feedback": mean, "p95": percentile(latencies, 0.95)}


def check(*, task: str) -> dict[str, Any]:
    """Compare the task's champion with the one it replaced; roll back when it is worse."""
    row = ActiveModel.objects.select_related("version").filter(task=task).first()
    promotion = (
        LifecycleEvent.objects.filter(task=task, action__in=["promote", "rollback"], to_version=row.version).first() if row else None
    )
    if row is None or promotion is None or promotion.from_version is None:
        return {"task": task, "status": "nothing to compare"}
    window = timedelta(hours=settings.GUARDRAIL_WINDOW_HOURS)
    now, since = promotion.created_at + window, promotion.created_at
    current, previous = _window(row.version, since, now), _window(promotion.from_version, since - window, since)
    current_values, previous_values = current.pop("rating_values"), previous.pop("rating_values")
    if min(current["calls"], previous["calls"]) < settings.GUARDRAIL_MIN_CALLS:
        return {"task": task, "status": "need more data", "current": current, "previous": previous}
    problems = []
    p_errors = proportion_worse(current["errors"], current["calls"], previous["errors"], previous["calls"])
    if p_errors < settings.GUARDRAIL_ALPHA:
        problems.append(
            f"error rate {current['errors'] / current['calls']:.1%} vs {previous['errors'] / previous['calls']:.1%} (p = {p_errors:.2g})"
        )
    welch = welch_lower(current_values, previous_values)
    if welch.p_lower < settings.GUARDRAIL_ALPHA:
        problems.append(
            f"mean feedback {current['mean_feedback']:.2f} vs {previous['mean_feedback']:.2f} of 5 (Welch t = {welch.statistic:.2f}, "
            f"p = {welch.p_lower:.2g})"
        )
    if current["p95"] and previous["p95"] and current["p95"] > settings.GUARDRAIL_LATENCY_RATIO * previous["p95"]:
        problems.append(f"p95 latency {current['p95']:.0f} ms vs {previous['p95']:.0f} ms")
    result: dict[str, Any] = {"task": task, "current": current, "previous": previous, "problems": problems, "status": "healthy"}
    if problems:
        result["status"] = "worse"
        if settings.AUTO_ROLLBACK:
            reason = f"guardrails: {row.version.name} is worse than {promotion.from_version.name}: " + "; ".join(problems)
            try:
                result["rolled_back_to"] = version_rollback(task=task, actor="guardrails", reason=reason).name
                result["status"] = "rolled back"
            except RegistryError as exc:
                result["status"] = f"worse, rollback refused: {exc.one_line()}"
    return result


def check_all() -> list[dict[str, Any]]:
    return [check(task=task) for task in ActiveModel.objects.order_by("task").values_list("task", flat=True)]
