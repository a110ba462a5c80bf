"""One version's traffic per day (two aggregate queries, on the model_version index)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDay
from django.utils import timezone

from interactions.models import Feedback, Interaction

TREND_DAYS = 30


def version_trends(*, name: str, days: int = TREND_DAYS) -> list[dict[str, Any]]:
    """Per day with traffic: mean latency, failure share and mean feedback score (1-5)."""
    since = timezone.now() - timedelta(days=days)
    traffic = (
        Interaction.objects.order_by()
        .filter(model_version=name, created_at__gte=since)
        .annotate(day=TruncDay("created_at"))
        .values("day")
        .annotate(calls=Count("pk"), failures=Count("pk", filter=Q(outcome="failure")), latency=Avg("latency_ms"))
    )
    ratings = (
        Feedback.objects.order_by()
        .filter(interaction__model_version=name, interaction__created_at__gte=since, kind="score")
        .annotate(day=TruncDay("interaction__created_at"))
        .values("day")
        .annotate(mean=Avg("score"))
    )
    feedback = {row["day"]: row["mean"] for row in ratings}
    return [
        {"day": row["day"], "calls": row["calls"], "latency": row["latency"], "failure_share": row["failures"] / row["calls"],
         "feedback": feedback.get(row["day"])}
        for row in sorted(traffic, key=lambda r: r["day"])
    ]  # fmt: skip
