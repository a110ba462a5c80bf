"""Performance per model version: calls, errors, latency p50/p95, tokens, feedback, and a trust
score. `performance()` computes it from the interactions as they are now (a scan of the task's
interactions: too slow for a request); `stats_refresh()` stores it as VersionStats rows, off the
request path (the `refresh-version-stats` schedule, every minute), and `stats_read()` reads them
(the router, GET models/performance).

trust = the Wilson 95% lower bound of the share of accepted answers among the judged ones: an
answer is *rejected* when it failed (outcome failure), was corrected, got a thumb down or a score
of 1-2; *accepted* when it was not rejected and got a thumb up or a score of 4-5; answers nobody
judged (or scored 3) do not count. So a version whose every answer was corrected scores 0, a
few good ratings score little (the bound is wide) and many score near their share; 0 when
nothing was judged. Only versions this platform knows (registered ModelVersions of the task) are
scored: an external label an application logged keeps its counts but trust 0, and is listed
after the known versions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db import transaction
from django.db.models import Avg, Count, Exists, OuterRef, Q, Sum
from django.utils import timezone

from interactions.models import Feedback, Interaction

from .models import ModelVersion, VersionStats

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


Z95 = 1.959963984540054


def trust(*, accepted: int, judged: int, z: float = Z95) -> float:
    """The Wilson score lower bound of accepted / judged (0 when nothing was judged)."""
    if judged <= 0:
        return 0.0
    p = accepted / judged
    centre = p + z * z / (2 * judged)
    half = z * (p * (1 - p) / judged + z * z / (4 * judged * judged)) ** 0.5
    return round(max(0.0, (centre - half) / (1 + z * z / judged)), 4)


def _judgements(interactions: Any) -> Any:
    """The interactions with `rejected` and `accepted` flags (see the module docstring)."""
    feedback = Feedback.objects.filter(interaction=OuterRef("pk"))
    against = feedback.filter(Q(kind="correction") | Q(kind="thumb", thumb="down") | Q(kind="score", score__lte=2))
    for_it = feedback.filter(Q(kind="thumb", thumb="up") | Q(kind="score", score__gte=4))
    return interactions.alias(against=Exists(against), for_it=Exists(for_it))


def performance(*, task: str = "") -> list[dict[str, Any]]:
    """One row per served version (or external label), known versions first, most trusted first."""
    interactions = Interaction.objects.exclude(model_version="")
    if task:
        interactions = interactions.filter(task=task)
    rejected = Q(outcome="failure") | Q(against=True)
    totals = (
        _judgements(interactions)
        .values("model_version", "task")
        .annotate(
            calls=Count("id"), errors=Count("id", filter=Q(outcome="failure")), tokens=Sum("tokens_total"),
            rejected=Count("id", filter=rejected), accepted=Count("id", filter=Q(for_it=True) & ~rejected),
        )
    )  # fmt: skip
    known = set(ModelVersion.objects.filter(name__in=interactions.values("model_version")).values_list("task", "name"))
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
                "trust": trust(accepted=total["accepted"], judged=total["accepted"] + total["rejected"])
                if (total["task"], name) in known
                else 0.0,
                "known": (total["task"], name) in known,
            }
        )
    return sorted(rows, key=lambda r: (not r["known"], -r["trust"], r["version"]))


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
    """The stored rows (as of their `refreshed_at`): the versions this platform knows, most
    trusted first, then external labels."""
    known = Exists(ModelVersion.objects.filter(task=OuterRef("task"), name=OuterRef("version")))
    rows = VersionStats.objects.alias(known=known).order_by("-known", "-trust", "version")
    if task:
        rows = rows.filter(task=task)
    if versions is not None:
        rows = rows.filter(version__in=versions)
    return list(rows.values("version", "task", *FIELDS, "refreshed_at"))
