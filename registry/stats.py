"""Performance per model version: calls, errors, latency p50/p95, tokens, feedback, and a trust
score. `performance()` computes it from the interactions as they are now (a scan of the task's
interactions: too slow for a request); `stats_refresh()` stores it as VersionStats rows, off the
request path (the `refresh-version-stats` schedule, every minute), and `stats_read()` reads them
(the router, GET models/performance).

trust = (1 - error rate) x satisfaction x confidence in the numbers, where satisfaction is the
mean of the scores mapped 1..5 -> 0..1 and the share of thumbs up (0.5 when nobody rated), and
confidence grows with the calls made: min(1, calls / 50) ** 0.5.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from interactions.models import Feedback, Interaction

from .models import VersionStats

FIELDS = (
    "calls",
    "errors",
    "error_rate",
    "latency_p50_ms",
    "latency_p95_ms",
    "tokens",
    "mean_feedback_score",
    "thumbs_up_share",
    "trust",
)


def percentile(values: list[int], share: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    position = (len(values) - 1) * share
    low, high = int(position), min(int(position) + 1, len(values) - 1)
    return round(values[low] + (values[high] - values[low]) * (position - low), 1)


def trust(*, calls: int, errors: int, mean_score: float | None, thumbs_up_share: float | None) -> float:
    if not calls:
        return 0.0
    parts = [(mean_score - 1) / 4] if mean_score is not None else []
    parts += [thumbs_up_share] if thumbs_up_share is not None else []
    satisfaction = sum(parts) / len(parts) if parts else 0.5
    return round((1 - errors / calls) * satisfaction * min(1.0, calls / 50) ** 0.5, 4)


def performance(*, task: str = "") -> list[dict[str, Any]]:
    """One row per served version, most trusted first."""
    interactions = Interaction.objects.exclude(model_version="")
    if task:
        interactions = interactions.filter(task=task)
    totals = interactions.values("model_version", "task").annotate(
        calls=Count("id"), errors=Count("id", filter=Q(outcome="failure")), tokens=Sum("tokens_total")
    )
    feedback = (
        Feedback.objects.filter(interaction__in=interactions)
        .values("interaction__model_version")
        .annotate(
            mean_score=Avg("score", filter=Q(kind="score")),
            ups=Count("id", filter=Q(kind="thumb", thumb="up")),
            thumbs=Count("id", filter=Q(kind="thumb")),
        )
    )
    by_version = {f["interaction__model_version"]: f for f in feedback}
    latencies: dict[str, list[int]] = defaultdict(list)
    timed = interactions.filter(latency_ms__isnull=False).values_list("model_version", "latency_ms")
    for version, latency in timed.iterator(chunk_size=20_000):
        latencies[version].append(latency)
    rows = []
    for total in totals:
        name, ratings = total["model_version"], by_version.get(total["model_version"], {})
        mean_score = ratings.get("mean_score")
        share = ratings["ups"] / ratings["thumbs"] if ratings.get("thumbs") else None
        rows.append(
            {
                "version": name,
                "task": total["task"],
                "calls": total["calls"],
                "errors": total["errors"],
                "error_rate": round(total["errors"] / total["calls"], 4),
                "latency_p50_ms": percentile(latencies[name], 0.5),
                "latency_p95_ms": percentile(latencies[name], 0.95),
                "tokens": total["tokens"] or 0,
                "mean_feedback_score": round(mean_score, 3) if mean_score is not None else None,
                "thumbs_up_share": share,
                "trust": trust(
                    calls=total["calls"],
                    errors=total["errors"],
                    mean_score=mean_score,
                    thumbs_up_share=share,
                ),
            }
        )
    return sorted(rows, key=lambda r: (-r["trust"], r["version"]))


@transaction.atomic
def stats_refresh(*, task: str = "") -> int:
    """Recompute every served version's row (of one task, or all) from the interactions; rows of
    versions whose interactions are all gone (erased) are deleted. Returns the rows written."""
    now = timezone.now()
    fresh = performance(task=task)
    rows = [VersionStats(refreshed_at=now, **{f: r[f] for f in ("task", "version", *FIELDS)}) for r in fresh]
    VersionStats.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["task", "version"],
        update_fields=[*FIELDS, "refreshed_at"],
    )
    stale = VersionStats.objects.filter(refreshed_at__lt=now)
    (stale.filter(task=task) if task else stale).delete()
    return len(rows)


def stats_read(*, task: str = "", versions: list[str] | None = None) -> list[dict[str, Any]]:
    """The stored rows (as of their `refreshed_at`), most trusted first."""
    rows = VersionStats.objects.order_by("-trust", "version")
    if task:
        rows = rows.filter(task=task)
    if versions is not None:
        rows = rows.filter(version__in=versions)
    return list(rows.values("version", "task", *FIELDS, "refreshed_at"))
