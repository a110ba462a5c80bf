"""A low-traffic task still decides: its experiment replays recent corrected interactions (both
versions answer the logged prompt, the correction is ground truth). The same chain then shows
the arena's field scores: a candidate trained on wrong labels loses by a wide margin, and no
evaluated answer had a budget short of its expected answer."""

from __future__ import annotations

import random

import pytest

from abtesting import experiments, services
from abtesting.models import EvalCase, EvalRun, Experiment
from curation.models import TrainingExample
from registry.models import ActiveModel
from registry.serving import champion
from tests.abtesting.test_experiments import corrupted_dataset, train_version
from tests.training.conftest import command, sft_dataset

pytestmark = pytest.mark.django_db


def corrected_traffic(api, *, count: int, seed: int) -> None:
    """Requests the champion answers, each corrected by its user (a quiet task: nothing else)."""
    rng = random.Random(seed)
    for _ in range(count):
        prompt, target = command(rng)
        answer = api.post("/api/v1/generate", {"task": "commands", "input_text": prompt, "max_tokens": 40}, format="json")
        assert answer.status_code == 200, answer.content
        url = f"/api/v1/interactions/{answer.json()['interaction_id']}/feedback"
        assert api.post(url, {"kind": "correction", "correction": target}, format="json").status_code == 201


def token_count(base_dir, text: str) -> int:
    from transformers import AutoTokenizer

    return len(AutoTokenizer.from_pretrained(base_dir)(text, add_special_tokens=False)["input_ids"])


@pytest.mark.slow
def test_replays_decide_a_quiet_experiment_and_wrong_labels_lose_the_arena_by_far(
    training_settings, base_model_dir, make_api, django_capture_on_commit_callbacks
):
    settings = training_settings
    settings.AUTO_EVALUATE = False
    settings.EXPERIMENT_MIN_TRIALS = 20
    api = make_api()
    base = champion("commands")
    corrected_traffic(api, count=30, seed=21)  # the last weeks of a quiet task: 30 requests, all corrected

    # 1. a good candidate passes the arena; its experiment decides on replays alone (no live request)
    sft_dataset(count=200)
    # the recipe's 30 epochs: after 20 the random-initialised model sometimes had no JSON answer right
    # on its eval split yet (field score 0.0 against the base's 0.0), so the arena could not pass it
    good = train_version(epochs=30)
    with django_capture_on_commit_callbacks(execute=True):
        result = services.candidate_evaluate(version=good)
    assert result["passed"], result
    experiment = Experiment.objects.get(challenger=good)
    assert experiment.status == "awaiting_approval", (experiment.reason, experiment.stats)
    stats = experiment.stats
    assert stats["replayed"] == stats["trials"] >= 20
    assert stats["sources"] == {"ground_truth": stats["trials"]}
    assert stats["wins"] >= 8
    for trial in experiment.trials.all():
        assert trial.replayed
        assert trial.shown == ""
        assert trial.ground_truth.startswith('{"action"')
        assert trial.score_a == trial.detail["score_a"]
        if trial.verdict != "tie":  # the winner is right; a wrong answer never wins
            assert trial.detail[f"right_{trial.verdict.lower()}"], trial.detail
    approved = api.post(f"/api/v1/experiments/{experiment.pk}/approve", {"reason": "replays"}, format="json")
    assert approved.status_code == 200, approved.content
    assert ActiveModel.objects.get(task="commands").version == good

    # 2. a candidate trained on wrong labels: its field score on the earlier data's JSON answers is far below
    TrainingExample.objects.all().delete()
    corrupted_dataset()
    bad = train_version()
    result = services.candidate_evaluate(version=bad)
    assert result["status"] == "rejected", result
    mine, theirs = result["suites"][f"commands/dataset-{good.dataset_id}"]
    assert mine <= theirs - 0.2, result["suites"]
    runs = EvalRun.objects.filter(pk__in=[pk for pair in result["runs"] for pk in pair])
    rows = [row for run in runs for row in run.results]
    assert {tuple(row["parts"]) for row in rows} == {("json_fields",)}, "JSON answers are scored field by field"

    # 3. no answer was cut short of its expected answer: the request's budget at least, and room for all of it
    expected = dict(EvalCase.objects.filter(pk__in=[row["id"] for row in rows]).values_list("pk", "expected"))
    for row in rows:
        assert row["max_tokens"] >= 64, row
        assert row["max_tokens"] > token_count(base_model_dir, expected[row["id"]]), row
    assert base.pk != good.pk


def test_an_experiment_replays_recent_judged_interactions_once_within_its_limits(
    training_settings, make_api, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from abtesting import tasks
    from abtesting.models import EvaluationSettings, Trial
    from interactions.models import Interaction
    from tests.abtesting.test_experiments import plain_challenger

    api = make_api()
    champion("commands")  # the base serves the task
    corrected_traffic(api, count=4, seed=3)
    accepted = api.post("/api/v1/generate", {"task": "commands", "input_text": "open file 7", "max_tokens": 8}, format="json").json()
    url = f"/api/v1/interactions/{accepted['interaction_id']}/feedback"
    assert api.post(url, {"kind": "thumb", "thumb": "up"}, format="json").status_code == 201
    api.post("/api/v1/generate", {"task": "commands", "input_text": "unjudged 1", "max_tokens": 8}, format="json")
    old = Interaction.objects.filter(task="commands").order_by("created_at").first()
    Interaction.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))  # outside the window
    EvaluationSettings.objects.create(task="commands", replay_limit=3)
    _, challenger = plain_challenger()
    with django_capture_on_commit_callbacks(execute=True):
        experiment = experiments.experiment_start(challenger=challenger, actor="test", min_trials=50)
    replays = list(Trial.objects.filter(experiment=experiment))
    assert len(replays) == 3, "at most replay_limit"
    assert all(t.replayed and t.shown == "" and t.source == "ground_truth" for t in replays)
    assert all(t.output_a == t.output_b and t.verdict == "tie" for t in replays), "the same model twice: ties"
    assert old.pk not in {t.interaction_id for t in replays}
    truths = {t.interaction_id: t.ground_truth for t in replays}
    assert truths[next(iter(truths))]
    experiment.refresh_from_db()
    assert experiment.stats["replayed"] == 3
    EvaluationSettings.objects.filter(task="commands").update(replay_limit=10)
    tasks.hourly_experiments()  # the hourly top-up: the rest of the judged interactions, once each
    replays = list(Trial.objects.filter(experiment=experiment, replayed=True))
    assert len(replays) == 4, "4 corrected + 1 accepted, minus the one outside the window"
    accepted_trial = next(t for t in replays if str(t.interaction_id) == accepted["interaction_id"])
    assert accepted_trial.ground_truth == Interaction.objects.get(pk=accepted["interaction_id"]).output_text
    tasks.hourly_experiments()
    assert Trial.objects.filter(experiment=experiment).count() == 4, "never twice"
