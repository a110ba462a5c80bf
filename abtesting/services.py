"""Writes of abtesting: evaluation suites, evaluation runs, arena verdicts."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from curation.models import Dataset, DatasetItem
from interactions.models import Interaction
from learning_platform.errors import DomainError
from learning_platform.jobs import JobContext, job_run
from registry import serving
from registry.models import ModelVersion
from registry.services import version_reject

from . import arena, scorers, verdicts
from .models import EvalCase, EvalRun, EvalSuite, EvaluationSettings

logger = logging.getLogger(__name__)
DEFAULT_WEIGHTS = {"normalized_match": 2.0, "keyword_coverage": 1.0, "reference_similarity": 1.0, "length": 0.5, "no_placeholders": 0.5,
                   "formatting": 0.5, "no_error_text": 0.5}  # fmt: skip

# (category, question, expected answer, keywords): the default suite every task starts with
DEFAULT_CASES = [
    ("arithmetic", "What is 12 plus 30?", "42", ["42"]),
    ("arithmetic", "What is 7 times 8?", "56", ["56"]),
    ("coding", "Write a Python function that adds two numbers.", "def add(a, b):\n    return a + b", ["def", "return"]),
    ("coding", "How do you reverse a list in Python?", "Use my_list[::-1] or my_list.reverse().", ["reverse"]),
    ("explanation", "Why is the sky blue?", "Sunlight scatters off air molecules, and blue light scatters the most.", ["scatter", "blue"]),
    (
        "explanation",
        "What does a password manager do?",
        "It stores your passwords securely and fills them in for you.",
        ["passwords", "stores"],
    ),
    ("reasoning", "If all cats are animals and Tom is a cat, is Tom an animal?", "Yes, Tom is an animal.", ["yes"]),
    ("reasoning", "A train leaves at 3 pm and the trip takes 2 hours. When does it arrive?", "It arrives at 5 pm.", ["5"]),
    ("translation", "Translate 'thank you' to French.", "Merci.", ["merci"]),
    ("translation", "Translate 'good morning' to Spanish.", "Buenos días.", ["buenos"]),
    ("factual", "What is the capital of Italy?", "Rome is the capital of Italy.", ["rome"]),
    ("factual", "How many days are in a leap year?", "366 days.", ["366"]),
    ("listing", "List three primary colors.", "Red, yellow and blue.", ["red", "blue", "yellow"]),
    ("listing", "Name the first three days of the week.", "Monday, Tuesday and Wednesday.", ["monday", "tuesday", "wednesday"]),
    (
        "summarization",
        "Summarize: The meeting planned for Monday moved to Friday afternoon.",
        "The meeting is now on Friday afternoon.",
        ["friday"],
    ),
    (
        "summarization",
        "Summarize: Orders over 50 euros ship free; smaller ones cost 5 euros.",
        "Shipping is free over 50 euros, else 5 euros.",
        ["free", "50"],
    ),
]


EDITABLE_SETTINGS = {"scorer", "number_tolerance", "max_tokens", "replay_limit", "replay_days"}


class EvaluationError(DomainError):
    """An evaluation request refused; nothing was run."""


def evaluation_settings(*, task: str) -> EvaluationSettings:
    """The task's evaluation settings: the saved row, or the defaults (unsaved)."""
    return verdicts.task_settings(task)


@transaction.atomic
def evaluation_settings_save(*, task: str, **values: Any) -> EvaluationSettings:
    """Create or change the task's evaluation settings (only the fields given change)."""
    row = EvaluationSettings.objects.select_for_update().filter(task=task).first() or EvaluationSettings(task=task)
    unknown = set(values) - EDITABLE_SETTINGS
    if unknown:
        raise EvaluationError("Unknown evaluation settings.", fields={name: ["Not a setting."] for name in sorted(unknown)})
    for name, value in values.items():
        setattr(row, name, value)
    try:
        row.full_clean()
    except ValidationError as exc:
        raise EvaluationError("The evaluation settings are invalid; nothing changed.", fields=exc.message_dict) from None
    row.save()
    return row


@transaction.atomic
def suite_default(*, task: str) -> EvalSuite:
    """The task's default suite (created once): two cases in each of the eight categories."""
    suite, created = EvalSuite.objects.get_or_create(task=task, name="default", defaults={"weights": DEFAULT_WEIGHTS})
    if created:
        EvalCase.objects.bulk_create(
            EvalCase(suite=suite, category=c, messages=[{"role": "user", "content": q}], expected=e, keywords=k)
            for c, q, e, k in DEFAULT_CASES
        )
    return suite


@transaction.atomic
def suite_from_dataset(*, dataset: Dataset, name: str = "") -> EvalSuite:
    """A suite from a frozen dataset's eval split (SFT): each item's prompt, its target expected."""
    if dataset.status != Dataset.Status.FROZEN or dataset.kind not in ("sft", "preference"):
        raise EvaluationError(
            "A suite is made from a frozen SFT or preference dataset.",
            fields={"dataset": [f"{dataset} is {dataset.status} {dataset.kind}."]},
        )
    # the target (the chosen answer of a pair) is the expected output; items whose interaction is
    # gone are skipped, and erasing a subject later deletes the cases made from their data
    items = DatasetItem.objects.filter(dataset=dataset, split="eval", source_interaction_id__in=Interaction.objects.values("id"))
    if not items.exists():
        raise EvaluationError(f"Dataset {dataset} has no eval split.", fields={"dataset": ["Freeze it with an eval_ratio above 0."]})
    suite = EvalSuite.objects.create(task=dataset.task, name=name or f"dataset-{dataset.pk}", weights=DEFAULT_WEIGHTS)
    EvalCase.objects.bulk_create(
        EvalCase(
            suite=suite,
            category=item.category or "dataset",
            messages=item.prompt,
            expected=item.target,
            expects_json=item.target.lstrip().startswith(("{", "[")),
            source_interaction_id=item.source_interaction_id,
        )
        for item in items.iterator()
    )
    return suite


def suites_for_arena(version: ModelVersion) -> list[EvalSuite]:
    """The suites a new candidate meets the champion on: every suite of its task except the
    generic default one (the eval splits of the datasets earlier versions were trained on, the
    candidate's own, made on first use, and whatever staff wrote), so a candidate trained on bad
    labels meets the good labels of earlier data. The default suite only when there is nothing else."""
    if version.dataset_id and not EvalSuite.objects.filter(task=version.task, name=f"dataset-{version.dataset_id}").exists():
        with contextlib.suppress(EvaluationError):  # no eval split, or a kind without targets
            suite_from_dataset(dataset=Dataset.objects.get(pk=version.dataset_id))
    suites = list(EvalSuite.objects.filter(task=version.task, cases__isnull=False).exclude(name="default").distinct().order_by("pk"))
    return suites or [suite_default(task=version.task)]


def eval_run(*, version: ModelVersion, suite: EvalSuite) -> EvalRun:
    """Every case of the suite answered by the version (greedy), scored, summed up per category:
    a job (learning_platform.jobs) whose heart beats while the model answers; a failure is
    recorded on the run, then re-raised."""
    if not suite.cases.exists():
        raise EvaluationError(f"Suite {suite} has no cases.")
    run = EvalRun.objects.create(version=version, suite=suite)
    return job_run(EvalRun, run.pk, lambda context: _evaluate(context, version, suite))


def _evaluate(context: JobContext, version: ModelVersion, suite: EvalSuite) -> None:
    cases = list(suite.cases.all())
    config = verdicts.task_settings(suite.task)
    results = []
    for number, case in enumerate(cases, start=1):
        # the budget a request would get (or the task's), never short of the expected answer
        max_tokens = verdicts.answer_budget(config, case.expected)
        generation = serving.generate(version=version, messages=case.messages, max_tokens=max_tokens, temperature=0, n=1)
        output = generation.texts[0]
        expected_json = case.expected if case.expects_json else ""  # auto scores JSON fields only where JSON is expected
        weights = verdicts.weights_for(config, expected=expected_json, weights=suite.weights or DEFAULT_WEIGHTS)
        scored = scorers.score(output, verdicts.case_of(config, case), weights)
        results.append(
            {
                "id": case.pk, "category": case.category, "output": output, "score": scored.total * case.weight,
                "parts": scored.parts, "latency_ms": generation.latency_ms, "max_tokens": max_tokens,
                "completion_tokens": generation.completion_tokens[0] if generation.completion_tokens else None,
            }
        )  # fmt: skip
        context.progress(100.0 * number / len(cases))
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in results:
        grouped[row["category"]].append(row)
    by_category = {
        category: {
            "score": round(sum(r["score"] for r in rows) / len(rows), 4),
            "latency_ms": round(sum(r["latency_ms"] for r in rows) / len(rows), 1),
        }
        for category, rows in grouped.items()
    }
    score = round(sum(r["score"] for r in results) / len(results), 4)
    latency = round(sum(r["latency_ms"] for r in results) / len(results), 1)
    context.stage(results=results, by_category=by_category, score=score, mean_latency_ms=latency)


def arena_compare(
    *, candidate: ModelVersion, champion: ModelVersion, suite: EvalSuite, margin: float | None = None, quality_weight: float | None = None
) -> tuple[arena.Verdict, EvalRun, EvalRun]:
    """Both versions on the same cases; the verdict says whether the candidate passes (weights and
    margin default to ARENA_QUALITY_WEIGHT and ARENA_REGRESSION_MARGIN)."""
    verdict, runs = arena_compare_suites(
        candidate=candidate, champion=champion, suites=[suite], margin=margin, quality_weight=quality_weight
    )
    return verdict, runs[0][0], runs[0][1]


def arena_compare_suites(
    *,
    candidate: ModelVersion,
    champion: ModelVersion,
    suites: list[EvalSuite],
    margin: float | None = None,
    quality_weight: float | None = None,
) -> tuple[arena.Verdict, list[tuple[EvalRun, EvalRun]]]:
    """One verdict over several suites: categories are named suite/category, so a regression in
    any suite's category fails the candidate."""
    quality = settings.ARENA_QUALITY_WEIGHT if quality_weight is None else quality_weight
    runs, mine_rows, their_rows = [], [], []
    for suite in suites:
        mine, theirs = eval_run(version=candidate, suite=suite), eval_run(version=champion, suite=suite)
        runs.append((mine, theirs))
        mine_rows += [{**row, "category": f"{suite.name}/{row['category']}"} for row in mine.results]
        their_rows += [{**row, "category": f"{suite.name}/{row['category']}"} for row in theirs.results]
    verdict = arena.compare(
        mine_rows, their_rows, quality_weight=quality, speed_weight=1 - quality,
        margin=settings.ARENA_REGRESSION_MARGIN if margin is None else margin,
    )  # fmt: skip
    return verdict, runs


def candidate_evaluate(*, version: ModelVersion, actor: str = "arena") -> dict[str, Any]:
    """The automatic chain for a new candidate: the arena against the champion; a loser is
    rejected (with the numbers), a winner enters an experiment on live traffic."""
    from . import experiments

    version.refresh_from_db()
    champion = serving.champion(version.task)
    if version.pk == champion.pk or version.tainted or version.status != ModelVersion.Status.CANDIDATE:
        return {
            "version": version.name,
            "status": f"skipped: {version.name} is {version.status}{' and tainted' if version.tainted else ''}",
        }
    suites = suites_for_arena(version)
    verdict, runs = arena_compare_suites(candidate=version, champion=champion, suites=suites)
    scores = {str(suite): [mine.score, theirs.score] for suite, (mine, theirs) in zip(suites, runs, strict=True)}
    summary = {
        "version": version.name, "champion": champion.name, "suites": scores, "passed": verdict.passed, "wins": verdict.wins,
        "losses": verdict.losses, "ties": verdict.ties, "regressions": verdict.regressions, "reason": verdict.reason,
        "runs": [[mine.pk, theirs.pk] for mine, theirs in runs],
    }  # fmt: skip
    if not verdict.passed:
        shown = ", ".join(f"{name} {mine} vs {theirs}" for name, (mine, theirs) in scores.items())
        version_reject(
            version=version, actor=actor, reason=f"lost the arena against {champion.name} (scores: {shown}): {verdict.reason}"
        )  # fmt: skip
        return {**summary, "status": "rejected"}
    try:
        experiment = experiments.experiment_start(challenger=version, control=champion, actor=actor, arena=summary)
    except experiments.ExperimentError as exc:
        return {**summary, "status": f"passed; no experiment: {exc.one_line()}"}
    return {**summary, "status": f"passed; experiment {experiment.pk} started", "experiment": experiment.pk}
