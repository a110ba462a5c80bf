"""django-q2 entry points of abtesting."""

from __future__ import annotations

from registry.models import ModelVersion

from . import experiments, reports, services
from .guardrails import check_all


def evaluate_candidate(version_id: int) -> str:
    """A new candidate from training: the arena, then an experiment when it passes."""
    result = services.candidate_evaluate(version=ModelVersion.objects.get(pk=version_id))
    return f"{result['version']}: {result['status']}"


def run_trial(experiment_id: int, interaction_id: str, max_tokens: int = 64, temperature: float = 0.0) -> str:
    trial = experiments.trial_record(
        experiment_id=experiment_id, interaction_id=interaction_id, max_tokens=max_tokens, temperature=temperature
    )
    return f"trial {trial.pk}: {trial.verdict} ({trial.source})" if trial else "skipped (experiment ended or interaction erased)"


def hourly_experiments() -> str:
    ended = experiments.experiments_evaluate_all()
    return "\n".join(f"experiment {e.pk} ({e.task}): {e.status}, {e.recommendation}" for e in ended) or "no running experiments"


def hourly_guardrails() -> str:
    return "\n".join(f"{r['task']}: {r['status']}" for r in check_all()) or "no champions"


def monthly_reports() -> str:
    return "\n".join(f"{report.task}: {report.summary}" for report in reports.reports_build_all()) or "no champions"
