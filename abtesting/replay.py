"""Replay trials: an experiment also compares its two versions on recent judged interactions of
its task, so a task with little traffic still reaches a decision.

Both versions answer the logged prompt afterwards (greedy, with the evaluation budget of
abtesting/verdicts.py) and the verdict comes from ground truth: the interaction's correction, or
the logged answer when the user accepted it (a thumb up, a score of 4 or 5) and nobody corrected
it. Accepted answers are replayed too because corrections alone are the champion's mistakes: on
them any challenger that is right looks good, and only accepted answers show what it breaks.
Candidates: the task's interactions of the last `replay_days` (the task's evaluation settings)
that are not yet trials of this experiment, not in the train split of either version's dataset
(a version must not be judged on what it learned), and not of an opted-out subject; newest first,
at most `replay_limit` per experiment. Queued when an experiment starts and topped up hourly.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from curation.models import DatasetItem
from interactions.models import Feedback, Interaction
from registry import serving
from registry.models import ModelVersion

from . import experiments, verdicts
from .models import Experiment, Trial

logger = logging.getLogger(__name__)
EVALUATE_EVERY = 10  # replay trials between two evaluations (the sequential test may look at any time)


def replay_candidates(experiment: Experiment, *, days: int) -> Any:
    """The task's recent judged interactions this experiment may replay, newest first."""
    trained = DatasetItem.objects.filter(
        dataset_id__in=[d for d in (experiment.control.dataset_id, experiment.challenger.dataset_id) if d], split="train"
    ).values("source_interaction_id")
    judged = Feedback.objects.filter(
        Q(kind=Feedback.Kind.CORRECTION) | Q(kind=Feedback.Kind.THUMB, thumb="up") | Q(kind=Feedback.Kind.SCORE, score__gte=4)
    )
    return (
        Interaction.objects.filter(task=experiment.task, created_at__gte=timezone.now() - timedelta(days=days))
        .filter(pk__in=judged.values("interaction_id"))
        .exclude(pk__in=trained)
        .exclude(pk__in=experiment.trials.values("interaction_id"))
        .exclude(subject__opted_out=True)
        .order_by("-created_at", "-pk")
    )


def replay_truth(interaction: Interaction) -> str:
    """The correction, else the logged answer when its latest rating accepted it, else ""."""
    corrected = experiments.ground_truth(interaction)
    if corrected:
        return corrected
    rating = Feedback.objects.filter(interaction=interaction, kind__in=[Feedback.Kind.THUMB, Feedback.Kind.SCORE])
    latest = rating.order_by("-created_at", "-id").first()
    accepted = latest is not None and Feedback.rating(latest.kind, latest.score, latest.thumb) >= 4
    return interaction.output_text if accepted and interaction.output_text.strip() else ""


def _still_on(experiment: Experiment) -> bool:
    """Running, and neither side tainted (a tainted version never answers, not even a replay)."""
    running = Experiment.objects.filter(pk=experiment.pk, status=Experiment.Status.RUNNING).exists()
    ids = [experiment.control_id, experiment.challenger_id]
    return running and not ModelVersion.objects.filter(pk__in=ids, tainted=True).exists()


def _answer(version: ModelVersion, interaction: Interaction, budget: int) -> tuple[str, int | None, str]:
    messages = experiments.messages_of(interaction)
    try:
        generation = serving.generate(version=version, messages=messages, max_tokens=budget, temperature=0, n=1)
    except Exception as exc:  # a failing side loses the trial; the replay goes on
        logger.warning("replay: %s failed on %s: %s", version.name, interaction.pk, exc)
        return "", None, f"{version.name} failed: {exc}"[:2000]
    return generation.texts[0], generation.latency_ms, ""


def replay_one(experiment: Experiment, interaction: Interaction, truth: str, budget: int) -> Trial | None:
    """Both versions answer the interaction's prompt; the trial is judged on the truth."""
    a, latency_a, error_a = _answer(experiment.control, interaction, budget)
    b, latency_b, error_b = _answer(experiment.challenger, interaction, budget)
    if error_a or error_b:
        verdict = "tie" if error_a and error_b else ("B" if error_a else "A")
        source, detail = Trial.Source.HEURISTIC, {"error": error_a or error_b}
    else:
        verdict, source, detail = experiments.verdict_for(interaction, a, b, truth=truth)
    try:
        with transaction.atomic():
            return Trial.objects.create(
                experiment=experiment, interaction=interaction, shown="", replayed=True, output_a=a, output_b=b,
                latency_a_ms=latency_a, latency_b_ms=latency_b, error=error_a or error_b, verdict=verdict, source=source,
                detail=detail, **experiments.truth_fields(source, detail, truth),
            )  # fmt: skip
    except IntegrityError:  # a live trial of the same interaction came first
        return None


def experiment_replay(*, experiment_id: int) -> int:
    """Replay trials for a running experiment up to its task's replay_limit; the experiment is
    evaluated along the way and at the end. Returns the trials recorded."""
    experiment = Experiment.objects.select_related("control", "challenger").filter(pk=experiment_id).first()
    if experiment is None or not _still_on(experiment):
        return 0
    config = verdicts.task_settings(experiment.task)
    room = config.replay_limit - experiment.trials.filter(replayed=True).count()
    recorded = 0
    for interaction in list(replay_candidates(experiment, days=config.replay_days)[: max(0, room)]):
        if not _still_on(experiment):
            break
        truth = replay_truth(interaction)
        if not truth or replay_one(experiment, interaction, truth, verdicts.answer_budget(config, truth)) is None:
            continue
        recorded += 1
        if recorded % EVALUATE_EVERY == 0:
            experiments.experiment_evaluate(experiment=experiment, actor="replay")
    if recorded:
        experiments.experiment_evaluate(experiment=experiment, actor="replay")
    return recorded
