"""django-q2 entry points of abtesting."""

from __future__ import annotations

import logging

from registry.models import ModelVersion

from . import experiments, replay, reports, services
from .guardrails import check_all

logger = logging.getLogger(__name__)


def evaluate_candidate(version_id: int) -> str:
    """A new candidate from training: the arena, then an experiment when it passes."""
    result = services.candidate_evaluate(version=ModelVersion.objects.get(pk=version_id))
    return f"{result['version']}: {result['status']}"


def run_trial(experiment_id: int, interaction_id: str, max_tokens: int = 64, temperature: float = 0.0) -> str:
    trial = experiments.trial_record(
        experiment_id=experiment_id, interaction_id=interaction_id, max_tokens=max_tokens, temperature=temperature
    )
    return f"trial {trial.pk}: {trial.verdict} ({trial.source})" if trial else "skipped (experiment ended or interaction erased)"


def run_replay(experiment_id: int) -> str:
    """Replay trials on the task's recent judged interactions (queued when an experiment starts)."""
    return f"experiment {experiment_id}: {replay.experiment_replay(experiment_id=experiment_id)} replay trials"


def hourly_experiments() -> str:
    """Top up each running experiment's replay trials (judged interactions arrived meanwhile),
    then evaluate every open experiment."""
    for experiment_id in experiments.Experiment.objects.filter(status="running").values_list("pk", flat=True):
        try:
            replay.experiment_replay(experiment_id=experiment_id)
        except Exception:  # one experiment's failing replay does not stop the others' evaluation
            logger.exception("replaying for experiment %s failed", experiment_id)
    ended = experiments.experiments_evaluate_all()
    return "\n".join(f"experiment {e.pk} ({e.task}): {e.status}, {e.recommendation}" for e in ended) or "no running experiments"


def hourly_guardrails() -> str:
    return "\n".join(f"{r['task']}: {r['status']}" for r in check_all()) or "no champions"


def monthly_reports() -> str:
    return "\n".join(f"{report.task}: {report.summary}" for report in reports.reports_build_all()) or "no champions"
