"""Monthly reports: every suite of a task run on its champion and the versions that were champion
before it (up to REPORT_VERSIONS, oldest first), with the trend of each suite's score and the
categories where the champion does worse than the version before it."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from registry.models import ActiveModel, LifecycleEvent, ModelVersion

from .models import EvalReport, EvalSuite
from .services import eval_run, suite_default

REPORT_VERSIONS = 5


def report_versions(*, task: str) -> list[ModelVersion]:
    """The champion and the earlier champions of a task, oldest first (tainted ones left out)."""
    row = ActiveModel.objects.select_related("version").filter(task=task).first()
    if row is None:
        return []
    events = LifecycleEvent.objects.filter(task=task, action__in=["promote", "rollback"]).order_by("created_at", "id")
    order: list[int] = []
    for version_id in events.values_list("to_version_id", flat=True):
        if version_id in order:
            order.remove(version_id)
        order.append(version_id)
    if row.version_id in order:
        order.remove(row.version_id)
    order.append(row.version_id)
    versions = ModelVersion.objects.in_bulk(order)
    kept = [versions[i] for i in order if not versions[i].tainted or i == row.version_id]
    return kept[-REPORT_VERSIONS:]


def report_build(*, task: str) -> EvalReport:
    versions = report_versions(task=task)
    if not versions:
        return EvalReport.objects.create(task=task, summary="no champion yet: nothing to report")
    suites = list(EvalSuite.objects.filter(task=task, cases__isnull=False).distinct().order_by("name")) or [suite_default(task=task)]
    rows: list[dict[str, Any]] = []
    for version in versions:
        results = []
        for suite in suites:
            run = eval_run(version=version, suite=suite)
            results.append({"suite": suite.name, "run": run.pk, "score": run.score, "by_category": run.by_category})
        rows.append({"version": version.name, "status": version.status, "suites": results})
    trend = [{"suite": suite.name, "scores": [{"version": r["version"], "score": r["suites"][i]["score"]} for r in rows]}
             for i, suite in enumerate(suites)]  # fmt: skip
    regressions = []
    if len(rows) >= 2:
        current, previous = rows[-1], rows[-2]
        for now, before in zip(current["suites"], previous["suites"], strict=True):
            for category, values in sorted(now["by_category"].items()):
                earlier = before["by_category"].get(category)
                if earlier is not None and earlier["score"] - values["score"] > settings.ARENA_REGRESSION_MARGIN:
                    regressions.append(
                        {
                            "suite": now["suite"],
                            "category": category,
                            "version": current["version"],
                            "score": values["score"],
                            "previous_version": previous["version"],
                            "previous_score": earlier["score"],
                        }
                    )
    champion = rows[-1]
    mean = sum(s["score"] or 0 for s in champion["suites"]) / len(champion["suites"])
    summary = f"{champion['version']}: mean score {mean:.3f} over {len(suites)} suite(s)"
    if len(rows) >= 2:
        before_mean = sum(s["score"] or 0 for s in rows[-2]["suites"]) / len(rows[-2]["suites"])
        summary += f" (previous champion {rows[-2]['version']}: {before_mean:.3f})"
    summary += f"; {len(regressions)} regressed categor{'y' if len(regressions) == 1 else 'ies'}"
    return EvalReport.objects.create(task=task, versions=rows, trend=trend, regressions=regressions, summary=summary)


def reports_build_all() -> list[EvalReport]:
    return [report_build(task=task) for task in ActiveModel.objects.order_by("task").values_list("task", flat=True)]
