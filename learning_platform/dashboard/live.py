"""What the live JSON and the pages that poll it show of a running job or experiment."""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from abtesting.models import Experiment
from training.models import TrainingJob

from . import series


def job_live(job: TrainingJob) -> dict[str, Any]:
    eta = f", about {job.eta_seconds:.0f} s left" if job.eta_seconds and job.status == "running" else ""
    steps = f"step {job.step} of {job.total_steps}" if job.total_steps else "no steps yet"
    percent = job.progress or (100 * job.step / job.total_steps if job.total_steps else 0.0)
    return {
        "id": job.pk,
        "status": job.status,
        "progress": round(percent, 1),
        "step": job.step,
        "total_steps": job.total_steps,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "text": f"{job.status}: {percent:.0f}% ({steps}{eta})",
        "chart": series.loss_chart(job.loss_curve, chart_id=f"loss-{job.pk}"),
    }


def experiment_live(experiment: Experiment, history: list[str]) -> dict[str, Any]:
    points = series.experiment_series(history)
    last = points[-1] if points else {"trial": 0, "win_rate": 0.5, "low": 0.0, "high": 1.0, "p_value": 1.0}
    return {
        "id": experiment.pk,
        "status": experiment.status,
        "trials": len(history),
        "win_rate": round(last["win_rate"], 4),
        "low": round(last["low"], 4),
        "high": round(last["high"], 4),
        "p_value": last["p_value"],
        "text": f"{experiment.status}: {len(history)} trials, win rate {last['win_rate']:.2f} "
        f"[{last['low']:.2f}, {last['high']:.2f}], p = {last['p_value']:.3g} (alpha {experiment.alpha:g})",
        "win_chart": series.win_rate_chart(points, min_win_rate=experiment.min_win_rate, chart_id=f"win-{experiment.pk}"),
        "p_chart": series.p_value_chart(points, alpha=experiment.alpha, chart_id=f"p-{experiment.pk}"),
    }


def trials_html(experiment: Experiment) -> str:
    from abtesting import experiments

    trials = list(experiments.trials_of(experiment=experiment).defer("interaction__messages")[:50])
    return render_to_string("dashboard/trials.html", {"trials": trials})
