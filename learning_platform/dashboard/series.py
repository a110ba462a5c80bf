"""From stored numbers to the dashboard's charts (plain values in, SVG out; no Django).

Each function takes what a row holds (a loss curve, verdicts in order, an evaluation report's
trend) and returns the chart's SVG through `charts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import charts

# the stages of a curation run in the order rows flow through them (curation/services/runs.py)
CURATION_STAGES = ("read", "eligible", "scrubbed", "examples_created", "duplicates_exact", "duplicates_near", "tier_gold", "tier_silver")
MAX_POINTS = 200  # a long history is thinned to this many points (the last one always kept)


def thin(points: list[Any], limit: int = MAX_POINTS) -> list[Any]:
    if len(points) <= limit:
        return points
    step = len(points) / (limit - 1)
    return [points[int(i * step)] for i in range(limit - 1)] + [points[-1]]


def experiment_series(history: Sequence[str]) -> list[dict[str, float]]:
    """After each trial: the challenger's win rate (ties excluded) with its Wilson interval, and
    the sequential p-value: 1 / the largest Beta(1, 1)-mixture likelihood ratio so far, as
    abtesting.statistics.always_valid_p computes it, updated by one logarithm per trial (the
    ratio's factor for one more win is 2 (k + 1) / (n + 2), for one more loss 2 (n - k + 1) / (n + 2))."""
    from abtesting.statistics import wilson  # pure maths, at the top of the loop

    keep = set(thin(list(range(len(history)))))
    points, wins, decided, log_ratio, best = [], 0, 0, 0.0, 0.0
    for index, verdict in enumerate(history):
        if verdict in ("A", "B"):
            won = verdict == "B"
            log_ratio += math.log(2 * ((wins if won else decided - wins) + 1) / (decided + 2))
            decided, wins = decided + 1, wins + won
            best = max(best, log_ratio)
        if index in keep:
            low, high = wilson(wins, decided)
            rate = wins / decided if decided else 0.5
            points.append({"trial": index + 1, "win_rate": rate, "low": low, "high": high, "p_value": min(1.0, math.exp(-best))})
    return points


def win_rate_chart(points: list[dict[str, float]], *, min_win_rate: float, chart_id: str = "") -> str:
    return charts.line_chart(
        title="Challenger win rate (ties excluded) with its 95% interval",
        x_label="trials",
        y_label="win rate",
        series=[charts.Series("win rate", [(p["trial"], p["win_rate"]) for p in points], markers=len(points) < 40)],
        bands=[charts.Band("95% interval", [(p["trial"], p["low"], p["high"]) for p in points])],
        rules=[charts.Rule(f"needed {min_win_rate:g}", min_win_rate), charts.Rule("even 0.5", 0.5, "#999")],
        y_floor=0.0,
        y_ceiling=1.0,
        chart_id=chart_id,
        empty="no trials yet",
    )


def p_value_chart(points: list[dict[str, float]], *, alpha: float, chart_id: str = "") -> str:
    return charts.line_chart(
        title="Sequential p-value (may be checked after every trial)",
        x_label="trials",
        y_label="p-value (log scale)",
        series=[charts.Series("p-value", [(p["trial"], max(p["p_value"], 1e-6)) for p in points], color=charts.PALETTE[3])],
        rules=[charts.Rule(f"alpha {alpha:g}", alpha)],
        y_ceiling=1.0,
        y_floor=min([alpha / 10, *[max(p["p_value"], 1e-6) for p in points]]),
        log_y=True,
        chart_id=chart_id,
        empty="no trials yet",
    )


def loss_chart(curve: Sequence[dict[str, Any]], *, chart_id: str = "", width: int = 640) -> str:
    """Training loss per step, and the eval loss where it was measured."""
    train = [(p["step"], p["loss"]) for p in curve if "step" in p and p.get("loss") is not None]
    evals = [(p["step"], p["eval_loss"]) for p in curve if "step" in p and p.get("eval_loss") is not None]
    series = [charts.Series("training loss", thin(train), markers=len(train) < 30)]
    if evals:
        series.append(charts.Series("eval loss", thin(evals), color=charts.RED, dashed=True, markers=True))
    return charts.line_chart(title="Loss per step", x_label="step", y_label="loss", series=series, chart_id=chart_id,
                             width=width, empty="no loss logged yet")  # fmt: skip


def curation_chart(runs: Sequence[dict[str, Any]], *, chart_id: str = "") -> str:
    """Rows in and out of each curation stage, per run (x: the run's id)."""
    found = {name for run in runs for name, value in run["counts"].items() if isinstance(value, int | float)}
    stages = [s for s in CURATION_STAGES if s in found] + sorted(found - set(CURATION_STAGES))
    series = [
        charts.Series(stage, [(run["pk"], run["counts"][stage]) for run in runs if isinstance(run["counts"].get(stage), int | float)],
                      markers=True)
        for stage in stages[: len(charts.PALETTE)]
    ]  # fmt: skip
    return charts.line_chart(title="Curation: counts per stage, per run", x_label="curation run", y_label="rows", series=series,
                             chart_id=chart_id, empty="no finished curation run yet")  # fmt: skip


def report_charts(trend: Sequence[dict[str, Any]], versions: Sequence[dict[str, Any]]) -> list[str]:
    """An evaluation report: per suite, the score of each version in order, overall and per category."""
    found = []
    for row in trend:
        names = [s["version"] for s in row["scores"]]
        overall = [(i, s["score"]) for i, s in enumerate(row["scores"]) if s.get("score") is not None]
        per_category: dict[str, list[tuple[float, float]]] = {}
        for index, version in enumerate(versions):
            suite: dict[str, Any] = next((s for s in version.get("suites") or [] if s.get("suite") == row["suite"]), {})
            for category, value in sorted((suite.get("by_category") or {}).items()):
                score = value.get("score") if isinstance(value, dict) else value
                if isinstance(score, int | float):
                    per_category.setdefault(category, []).append((index, score))
        series = [charts.Series("overall", overall, markers=True)]
        series += [charts.Series(c, p, dashed=True, markers=True) for c, p in list(per_category.items())[: len(charts.PALETTE) - 1]]
        label = "version: " + ", ".join(f"{i} = {n}" for i, n in enumerate(names))
        found.append(charts.line_chart(title=f"Suite {row['suite']}: score per version", x_label=label[:120], y_label="score",
                                       series=series, y_floor=0.0, y_ceiling=1.0))  # fmt: skip
    return found


def version_trend_charts(days: Sequence[dict[str, Any]], *, title: str) -> list[str]:
    """Per day: mean latency, error share and mean feedback score of one version's traffic."""
    if not days:
        return [charts.empty_chart(title, "no traffic in the period")]
    x = [(i, d) for i, d in enumerate(days)]
    label = f"day ({days[0]['day']:%Y-%m-%d} = 0 … {days[-1]['day']:%Y-%m-%d} = {len(days) - 1})"
    latency = [charts.Series("mean latency (ms)", [(i, d["latency"]) for i, d in x if d["latency"] is not None], markers=True)]
    errors = [charts.Series("failure share", [(i, d["failure_share"]) for i, d in x], color=charts.RED, markers=True)]
    feedback = [charts.Series("mean feedback (1-5)", [(i, d["feedback"]) for i, d in x if d["feedback"] is not None],
                              color=charts.PALETTE[2], markers=True)]  # fmt: skip
    return [
        charts.line_chart(title=f"{title}: latency", x_label=label, y_label="ms", series=latency, width=420, y_floor=0.0),
        charts.line_chart(title=f"{title}: failures", x_label=label, y_label="share", series=errors, width=420, y_floor=0.0),
        charts.line_chart(title=f"{title}: feedback", x_label=label, y_label="score", series=feedback, width=420,
                          y_floor=1.0, y_ceiling=5.0, empty="no feedback in the period"),
    ]  # fmt: skip


def genealogy_chart(rows: Sequence[dict[str, Any]], *, title: str, chart_id: str = "") -> str:
    """rows: id, name, parent_id, status, tainted, champion, url."""
    ids = {r["id"] for r in rows}
    nodes = [
        charts.Node(key=r["id"], label=r["name"], parent=r["parent_id"] if r["parent_id"] in ids else None, url=r.get("url", ""),
                    champion=r["champion"], tainted=r["tainted"], note=r["status"] + (" · tainted" if r["tainted"] else ""))
        for r in rows
    ]  # fmt: skip
    return charts.tree_chart(nodes, title=title, chart_id=chart_id)
