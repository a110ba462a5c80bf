"""Online experiments end to end on the tiny model: the automatic chain from a finished training
job to a promotion, the arena refusing a candidate trained on corrupted labels, shadow work on the
task queue only, sticky canaries with their sample-ratio check, and the verdict sources."""

from __future__ import annotations

import json
import random

import pytest
from django.core.management import call_command
from django_q.conf import Conf
from django_q.models import OrmQ

from abtesting import experiments
from abtesting.models import EvalRun, Experiment, Trial
from curation.models import TrainingExample
from interactions.models import Interaction
from registry.models import ActiveModel, LifecycleEvent, ModelVersion
from registry.serving import champion
from tests.factories import ApiClientFactory
from tests.training.conftest import command, make_examples, sft_dataset
from training import runner
from training import services as training

pytestmark = pytest.mark.django_db


def train_version(epochs: int = 20) -> ModelVersion:
    # fewer epochs than the recipe's default for the tiny model: enough to tell good labels from bad
    job = runner.job_execute(job_id=training.job_create(task="commands", recipe={"epochs": epochs}).pk)
    assert job.status == "succeeded", job.error
    return ModelVersion.objects.get(training_job=job)


def corrupted_dataset(count: int = 200, seed: int = 7):
    """The same kind of commands, each with another command's answer (deliberately wrong labels)."""
    rng = random.Random(seed)
    pairs = [command(rng) for _ in range(count)]
    targets = [t for _, t in pairs]
    rng.shuffle(targets)
    make_examples("sft", [{"prompt": p, "target": t} for (p, _), t in zip(pairs, targets, strict=True)])
    from curation.services import dataset_freeze_new

    return dataset_freeze_new(task="commands", kind="sft", min_tier="bronze", eval_ratio=0.12, seed=seed)


def traffic(api, capture, *, until_trials: int, experiment: Experiment, correct: bool = True, seed: int = 11, limit: int = 200) -> int:
    """Requests to /api/v1/generate; each answer's correction (ground truth) arrives before the
    queued trial runs. Stops when the experiment has `until_trials` trials or left 'running'."""
    rng = random.Random(seed)
    sent = 0
    while sent < limit:
        prompt, target = command(rng)
        with capture(execute=False) as callbacks:
            answer = api.post("/api/v1/generate", {"task": "commands", "input_text": prompt, "max_tokens": 40}, format="json")
        assert answer.status_code == 200, answer.content
        sent += 1
        if correct:
            url = f"/api/v1/interactions/{answer.json()['interaction_id']}/feedback"
            feedback = api.post(url, {"kind": "correction", "correction": target},
                                format="json")  # fmt: skip
            assert feedback.status_code == 201, feedback.content
        with capture(execute=True):
            for callback in callbacks:
                callback()
        experiment.refresh_from_db()
        if experiment.status != "running" or experiment.trials.count() >= until_trials:
            break
    return sent


@pytest.mark.slow
def test_from_training_to_promotion_needs_only_the_approval_and_bad_labels_never_serve(
    training_settings, make_api, django_capture_on_commit_callbacks, monkeypatch
):
    settings = training_settings
    settings.AUTO_EVALUATE = True
    settings.EXPERIMENT_MIN_TRIALS = 20
    settings.EXPERIMENT_SAMPLE_RATE = 0.5
    api = make_api()
    base = champion("commands")

    # 1. a job trained on correct labels finishes: registered, the arena runs, an experiment starts
    sft_dataset(count=200)
    with django_capture_on_commit_callbacks(execute=True):
        good = train_version()
    good.refresh_from_db()
    experiment = Experiment.objects.get(challenger=good)
    assert experiment.control == base
    assert experiment.mode == "shadow"
    assert experiment.status == "running"
    assert experiment.arena["passed"] is True, experiment.arena
    assert EvalRun.objects.filter(version=good).exists()
    assert EvalRun.objects.filter(version=base).exists()
    assert LifecycleEvent.objects.filter(action="ab_test.started", to_version=good).exists()

    # 2. shadow work is never on the request path: the request enqueues, the queue answers
    from registry.serving.local import backend

    backend.cache_clear()
    monkeypatch.setattr(Conf, "SYNC", False)
    with django_capture_on_commit_callbacks(execute=True):
        shown = api.post("/api/v1/generate", {"task": "commands", "input_text": "open note 5", "max_tokens": 40}, format="json").json()
    assert shown["version"] == base.name
    assert good.name not in backend().adapters, "the challenger ran inside the request"
    queued = [q for q in OrmQ.objects.all() if q.func() == "abtesting.tasks.run_trial"]
    sampled = experiments.bucket(experiment.pk, shown["interaction_id"]) < 0.5
    assert len(queued) == int(sampled)
    assert not Trial.objects.exists()
    if queued:
        task = queued[0].task
        from abtesting import tasks

        tasks.run_trial(*task["args"])  # what a worker does with it
        assert Trial.objects.get().interaction_id.hex == shown["interaction_id"].replace("-", "")
        assert good.name in backend().adapters
    monkeypatch.setattr(Conf, "SYNC", True)

    # 3. live traffic with corrections: the challenger wins, the recommendation waits for approval
    sent = traffic(api, django_capture_on_commit_callbacks, until_trials=40, experiment=experiment)
    experiment.refresh_from_db()
    assert experiment.status == "awaiting_approval", (experiment.reason, experiment.stats)
    assert experiment.recommendation == "promote_challenger"
    stats = experiment.stats
    assert stats["trials"] >= 20
    assert stats["win_rate"] >= 0.65
    assert stats["p_value"] < 0.05
    assert stats["sources"].get("ground_truth", 0) >= stats["trials"] - 1
    assert 0.2 < stats["trials"] / (sent + 1) < 0.8, "about half the requests are sampled"
    assert LifecycleEvent.objects.filter(action="fine_tuning.ready_for_promotion", to_version=good).exists()
    assert ActiveModel.objects.get(task="commands").version == base, "nothing serves before the approval"

    answer = api.post(f"/api/v1/experiments/{experiment.pk}/approve", {"reason": "numbers look right"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["status"] == "completed"
    assert answer.json()["decision"] == "promote_challenger"
    assert ActiveModel.objects.get(task="commands").version == good
    assert LifecycleEvent.objects.filter(action="ab_test.completed", to_version=good).exists()

    # 4. a job trained on corrupted labels loses the arena against the new champion: never serves
    TrainingExample.objects.all().delete()
    corrupted_dataset()
    with django_capture_on_commit_callbacks(execute=True):
        bad = train_version()
    bad.refresh_from_db()
    assert bad.status == "rejected"
    rejection = LifecycleEvent.objects.get(action="reject", to_version=bad)
    assert rejection.actor == "arena"
    assert "lost the arena" in rejection.reason
    assert "regressed" in rejection.reason
    assert not Experiment.objects.filter(challenger=bad).exists()
    assert ActiveModel.objects.get(task="commands").version == good
    refused = api.post(f"/api/v1/models/{bad.name}/promote", {"reason": "try"}, format="json")
    assert refused.status_code == 409

    # 5. the monthly report: a drill rollback to the base makes the champion worse than its predecessor
    import io

    from abtesting.models import EvalReport
    from registry.services import version_rollback

    version_rollback(task="commands", actor="test", reason="drill")
    out = io.StringIO()
    call_command("evaluation_report", "commands", stdout=out)
    report = EvalReport.objects.get()
    assert [v["version"] for v in report.versions] == [good.name, base.name]
    suite = f"dataset-{good.dataset_id}"
    trend = next(row["scores"] for row in report.trend if row["suite"] == suite)
    assert trend[0]["score"] > trend[1]["score"] + 0.05, trend
    assert any(r["suite"] == suite and r["version"] == base.name for r in report.regressions)
    assert f"regression in {suite}/" in out.getvalue()
    listed = api.get("/api/v1/evaluations/reports?task=commands").json()
    assert listed[0]["id"] == report.pk
    assert listed[0]["regressions"] == report.regressions


def plain_challenger(task: str = "commands") -> tuple[ModelVersion, ModelVersion]:
    """The champion (the base) and a second version that is the same base: an A/A pair."""
    control = champion(task)
    challenger = ModelVersion.objects.create(task=task, name=f"{control.name}-same", number=99, base_model=control.base_model)
    return control, challenger


def challenger_won(experiment: Experiment, count: int) -> None:
    """`count` trials of logged control answers that the challenger won on ground truth."""
    client = ApiClientFactory()
    for i in range(count):
        interaction = Interaction.objects.create(
            client=client, task=experiment.task, input_text=f"q{i}", output_text="a", model_version=experiment.control.name
        )
        Trial.objects.create(experiment=experiment, interaction=interaction, shown="A", output_a="a", output_b="b", verdict="B",
                             source="ground_truth", latency_a_ms=10, latency_b_ms=12)  # fmt: skip


def test_shadow_trials_are_sampled_judged_and_upgraded_by_late_corrections(training_settings, make_api, django_capture_on_commit_callbacks):
    api = make_api()
    _control, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", sample_rate=1.0, min_trials=4)
    ids = []
    for prompt in ["open file 1", "close task 2", "share note 3"]:
        with django_capture_on_commit_callbacks(execute=True):
            ids.append(
                api.post("/api/v1/generate", {"task": "commands", "input_text": prompt, "max_tokens": 8}, format="json").json()[
                    "interaction_id"
                ]
            )
    trials = list(experiment.trials.all())
    assert len(trials) == 3
    assert all(t.shown == "A" and t.output_a == t.output_b and t.verdict == "tie" and t.source == "heuristic" for t in trials)
    api.post(f"/api/v1/interactions/{ids[0]}/feedback", {"kind": "correction", "correction": "right"}, format="json")
    experiment = experiments.experiment_evaluate(experiment=experiment)
    assert experiment.trials.get(interaction_id=ids[0]).source == "ground_truth"
    assert experiment.stats["trials"] == 3
    assert experiment.stats["ties"] == 3
    assert experiment.recommendation == "need_more_data"
    assert "3 of 4 trials" in experiment.reason
    # a second experiment on the same task is refused while this one is open
    with pytest.raises(experiments.ExperimentError, match="already has an open experiment"):
        experiments.experiment_start(challenger=challenger, actor="test")
    # erasing a subject removes their trials
    with django_capture_on_commit_callbacks(execute=True):
        answer = api.post("/api/v1/generate", {"task": "commands", "input_text": "move folder 4", "max_tokens": 8, "user_id": "ann"},
                          format="json").json()  # fmt: skip
    assert experiment.trials.filter(interaction_id=answer["interaction_id"]).exists()
    assert api.delete("/api/v1/subjects/ann").status_code in (200, 202, 204)
    assert not Trial.objects.filter(interaction_id=answer["interaction_id"]).exists()


def test_a_canary_is_sticky_per_subject_and_pairs_ratings(training_settings, make_api, django_capture_on_commit_callbacks):
    api = make_api()
    control, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", mode="canary", sample_rate=0.5, min_trials=1000)
    seen: dict[str, set[str]] = {}
    for round_ in range(2):
        for user in range(12):
            with django_capture_on_commit_callbacks(execute=True):
                answer = api.post("/api/v1/generate", {"task": "commands", "input_text": f"open file {round_}", "max_tokens": 4,
                                                       "user_id": f"user-{user}"}, format="json").json()  # fmt: skip
            seen.setdefault(f"user-{user}", set()).add(answer["version"])
            score = 5 if answer["version"] == challenger.name else 2
            api.post(f"/api/v1/interactions/{answer['interaction_id']}/feedback", {"kind": "score", "score": score}, format="json")
    assert all(len(versions) == 1 for versions in seen.values()), "a subject always sees the same arm"
    canary_users = sum(challenger.name in v for v in seen.values())
    assert 0 < canary_users < 12
    # no user id: nothing to stick to, the control answers
    assert (
        api.post("/api/v1/generate", {"task": "commands", "input_text": "x", "max_tokens": 2}, format="json").json()["version"]
        == control.name
    )
    experiment = experiments.experiment_evaluate(experiment=experiment)
    trials = list(experiment.trials.all())
    assert len(trials) == 2 * canary_users
    assert all(t.shown == "B" for t in trials)
    assert experiment.stats["sample_ratio"]["challenger_subjects"] == canary_users
    assert experiment.stats["sample_ratio"]["alarm"] is False
    by_feedback = [t for t in trials if t.source == "feedback"]
    assert by_feedback
    assert all(t.verdict == "B" and t.detail["rating_b"] == 5 and t.detail["rating_a"] == 2 for t in by_feedback)
    # the chat completions door follows the same assignment
    user = next(u for u, v in seen.items() if challenger.name in v)
    chat = api.post("/v1/chat/completions", {"model": "commands", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2,
                                             "user": user}, format="json")  # fmt: skip
    assert chat.json()["model"] == challenger.name


def test_a_broken_canary_split_stops_the_experiment(training_settings, make_api, django_capture_on_commit_callbacks):
    api = make_api()
    control, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", mode="canary", sample_rate=0.5)
    # traffic served outside the experiment's assignment (as a broken router would): all control
    for user in range(40):
        api.post("/api/v1/interactions", {"task": "commands", "input_text": "x", "output_text": "y", "model_version": control.name,
                                          "user_id": f"u{user}"}, format="json")  # fmt: skip
    experiment = experiments.experiment_evaluate(experiment=experiment)
    assert experiment.status == "stopped"
    assert experiment.decision == "keep_control"
    assert "sample ratio mismatch" in experiment.reason
    assert experiment.stats["sample_ratio"]["alarm"] is True


def test_a_judge_model_decides_when_there_is_no_ground_truth(training_settings, make_api, django_capture_on_commit_callbacks):
    """A judge behind an OpenAI-compatible endpoint (a stand-in HTTP server answering "2")."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    asked: list[str] = []

    class Judge(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            asked.append(body["messages"][0]["content"])
            reply = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "2"}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Judge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    training_settings.JUDGE_URL = f"http://127.0.0.1:{server.server_port}/v1"
    training_settings.JUDGE_MODEL = "judge"
    api = make_api()
    try:
        _control, challenger = plain_challenger()
        experiment = experiments.experiment_start(challenger=challenger, actor="test", sample_rate=1.0)
        for prompt in ["open file 1", "close task 2", "share note 3", "move file 9"]:
            with django_capture_on_commit_callbacks(execute=True):
                api.post("/api/v1/generate", {"task": "commands", "input_text": prompt, "max_tokens": 4}, format="json")
    finally:
        server.shutdown()
    trials = list(experiment.trials.all())
    assert len(trials) == 4
    assert all(t.source == "judge" for t in trials)
    # "2" means the second answer shown to the judge; the order is shuffled per trial
    assert all(t.verdict == ("B" if t.detail["order"] == "AB" else "A") for t in trials)
    assert all("Answer 1:" in text and "open file" in asked[0] for text in asked)


def test_the_api_starts_lists_and_stops_experiments_with_clear_errors(training_settings, make_api):
    api = make_api()
    control, challenger = plain_challenger()
    bad = api.post("/api/v1/experiments", {"challenger": "nope", "sample_rate": 2}, format="json")
    assert bad.status_code == 400
    assert set(bad.json()["errors"]) >= {"challenger", "sample_rate"}
    same = api.post("/api/v1/experiments", {"challenger": control.name}, format="json")
    assert same.status_code == 400
    assert "challenger" in same.json()["errors"]
    made = api.post("/api/v1/experiments", {"challenger": challenger.name, "mode": "canary", "sample_rate": 0.1, "min_trials": 10},
                    format="json")  # fmt: skip
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["control"] == control.name
    assert body["min_trials"] == 10
    assert body["max_trials"] == 2000
    assert body["status"] == "running"
    assert api.get("/api/v1/experiments?status=running").json()[0]["id"] == body["id"]
    detail = api.get(f"/api/v1/experiments/{body['id']}").json()
    assert detail["recent_trials"] == []
    assert api.post(f"/api/v1/experiments/{body['id']}/approve", {}, format="json").status_code == 409
    assert api.post(f"/api/v1/experiments/{body['id']}/fly", {}, format="json").status_code == 404
    stopped = api.post(f"/api/v1/experiments/{body['id']}/stop", {"reason": "changed my mind"}, format="json").json()
    assert stopped["status"] == "stopped"
    assert "changed my mind" in stopped["reason"]
    assert ModelVersion.objects.get(pk=challenger.pk).status == "candidate"
    from rest_framework.test import APIClient

    assert APIClient().get("/api/v1/experiments", HTTP_AUTHORIZATION="Bearer nope").status_code in (401, 403)
    readonly = make_api(scopes=("read",))
    assert readonly.get("/api/v1/experiments").status_code == 403


def test_auto_promote_needs_no_approval_and_the_hourly_task_ends_stale_experiments(training_settings):
    from abtesting import tasks
    from registry.models import PromotionPolicy

    control, challenger = plain_challenger()
    PromotionPolicy.objects.create(task="commands", auto_promote=True)
    experiment = experiments.experiment_start(challenger=challenger, actor="test", sample_rate=1.0, min_trials=10)
    challenger_won(experiment, 12)
    assert "completed" in tasks.hourly_experiments()
    experiment.refresh_from_db()
    assert experiment.decision == "promote_challenger"
    assert experiment.decided_by == "auto-promote"
    assert ActiveModel.objects.get(task="commands").version == challenger

    # undecided past its time: keep the control, reject the challenger
    other = ModelVersion.objects.create(task="commands", name="other", number=98, base_model=control.base_model)
    stale = experiments.experiment_start(challenger=other, actor="test", max_days=1)
    Experiment.objects.filter(pk=stale.pk).update(created_at=stale.created_at.replace(year=stale.created_at.year - 1))
    tasks.hourly_experiments()
    stale.refresh_from_db()
    assert stale.status == "completed"
    assert stale.decision == "keep_control"
    assert "undecided after 1 days" in stale.reason
    assert ModelVersion.objects.get(pk=other.pk).status == "rejected"


def test_setup_schedules_creates_the_hourly_and_monthly_evaluations():
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=__import__("io").StringIO())
    funcs = dict(Schedule.objects.values_list("func", "schedule_type"))
    assert funcs["abtesting.tasks.hourly_experiments"] == "H"
    assert funcs["abtesting.tasks.hourly_guardrails"] == "H"
    assert funcs["abtesting.tasks.monthly_reports"] == "M"


def test_the_experiment_command_starts_lists_and_stops(training_settings):
    import io

    from django.core.management.base import CommandError

    control, challenger = plain_challenger()
    out = io.StringIO()
    call_command("experiment", "start", challenger.name, "--mode", "canary", "--sample-rate", "0.3", stdout=out)
    experiment = Experiment.objects.get()
    assert experiment.mode == "canary"
    assert experiment.sample_rate == 0.3
    call_command("experiment", "list", stdout=out)
    call_command("experiment", "show", str(experiment.pk), stdout=out)
    assert f"{challenger.name} vs {control.name} canary running: need_more_data (no trials)" in out.getvalue()
    with pytest.raises(CommandError, match="already has an open experiment"):
        call_command("experiment", "start", challenger.name, stdout=out)
    with pytest.raises(CommandError, match="No model version named 'nope'"):
        call_command("experiment", "start", "nope", stdout=out)
    with pytest.raises(CommandError, match="No experiment 999999"):
        call_command("experiment", "stop", "999999", stdout=out)
    call_command("experiment", "stop", str(experiment.pk), "--reason", "enough", stdout=out)
    assert Experiment.objects.get().status == "stopped"
    with pytest.raises(CommandError, match="only one awaiting approval can be approved"):
        call_command("experiment", "approve", str(experiment.pk), stdout=out)


def test_the_admin_shows_an_experiment_and_approves_its_recommendation(training_settings, client, django_user_model):
    _, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", min_trials=3)
    challenger_won(experiment, 10)
    experiment = experiments.experiment_evaluate(experiment=experiment)
    assert experiment.status == "awaiting_approval"
    client.force_login(django_user_model.objects.create_superuser("staff", "", "pw"))
    page = client.get(f"/admin/abtesting/experiment/{experiment.pk}/change/").content.decode()
    assert "sequential p-value" in page
    assert "ground truth" in page
    listing = client.get("/admin/abtesting/experiment/").content.decode()
    assert "1.00 [" in listing
    url = "/admin/abtesting/experiment/"
    confirm = client.post(url, {"action": "approve", "_selected_action": [experiment.pk]})
    assert b"Reason" in confirm.content
    client.post(url, {"action": "approve", "_selected_action": [experiment.pk], "confirm_submit": "1", "reason": "looks right"})
    experiment.refresh_from_db()
    assert experiment.status == "completed"
    assert experiment.decided_by == "admin:staff"
    assert ActiveModel.objects.get(task="commands").version == challenger
    assert client.get("/admin/abtesting/evalreport/").status_code == 200


def test_a_registered_judge_that_names_no_answer_falls_back_to_the_heuristics(
    training_settings, make_api, django_capture_on_commit_callbacks
):
    """JUDGE_MODEL as a version served here: the untrained tiny model cannot answer "1", "2" or
    "tie", so the verdict falls back to the heuristic scorers and says why."""
    control, challenger = plain_challenger()
    training_settings.JUDGE_MODEL = control.name
    experiment = experiments.experiment_start(challenger=challenger, actor="test", sample_rate=1.0)
    api = make_api()
    with django_capture_on_commit_callbacks(execute=True):
        api.post("/api/v1/generate", {"task": "commands", "input_text": "open file 1", "max_tokens": 4}, format="json")
    trial = experiment.trials.get()
    assert trial.source == "heuristic"
    assert "The judge's reply names no answer" in trial.detail["judge_error"]
    training_settings.JUDGE_MODEL = "no-such-version"
    _, source, detail = experiments.verdict_for(trial.interaction, "a", "b")
    assert source == "heuristic"
    assert "JUDGE_MODEL names no registered version" in detail["judge_error"]


def test_rules_that_cannot_work_are_refused_and_a_canary_keeps_a_control_share(training_settings, make_api):
    api = make_api()
    _, challenger = plain_challenger()
    for body, field in [
        ({"mode": "canary", "sample_rate": 1}, "sample_rate"),
        ({"max_trials": 50}, "max_trials"),  # below the default minimum of 100
        ({"min_win_rate": 0.5}, "min_win_rate"),
    ]:
        refused = api.post("/api/v1/experiments", {"challenger": challenger.name, **body}, format="json")
        assert refused.status_code == 400, (body, refused.content)
        assert field in {**refused.json().get("errors", {}), **refused.json()}, refused.json()
    with pytest.raises(experiments.ExperimentError):
        experiments.experiment_start(challenger=challenger, actor="test", min_win_rate=0.3)
    assert not Experiment.objects.exists()


def test_a_challenger_that_becomes_tainted_stops_serving_at_once(training_settings, make_api, django_capture_on_commit_callbacks):
    api = make_api()
    control, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", mode="canary", sample_rate=0.99)
    body = {"task": "commands", "input_text": "open file 1", "max_tokens": 2, "user_id": "bob"}
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/generate", body, format="json").json()["version"] == challenger.name
    ModelVersion.objects.filter(pk=challenger.pk).update(tainted=True, tainted_reason="trained on erased data")
    with django_capture_on_commit_callbacks(execute=True):
        assert api.post("/api/v1/generate", body, format="json").json()["version"] == control.name
    experiment = experiments.experiment_evaluate(experiment=experiment)
    assert experiment.status == "stopped"
    assert "is tainted" in experiment.reason


def test_an_approval_after_the_champion_changed_is_refused(training_settings):
    from registry.services import version_promote

    control, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", min_trials=3)
    challenger_won(experiment, 10)
    assert experiments.experiment_evaluate(experiment=experiment).status == "awaiting_approval"
    other = ModelVersion.objects.create(task="commands", name="other", number=97, base_model=control.base_model, status="approved")
    version_promote(version=other, actor="staff")
    with pytest.raises(experiments.ExperimentError, match="no longer the champion"):
        experiments.experiment_approve(experiment=experiment, actor="staff")
    assert ActiveModel.objects.get(task="commands").version == other
    experiment = experiments.experiment_evaluate(experiment=experiment)
    assert experiment.status == "stopped"


def test_erasing_a_subject_whose_rating_was_paired_unpairs_it(training_settings, make_api, django_capture_on_commit_callbacks):
    api = make_api()
    control, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", mode="canary", sample_rate=0.5, min_trials=1000)
    for user in range(16):
        with django_capture_on_commit_callbacks(execute=True):
            answer = api.post("/api/v1/generate", {"task": "commands", "input_text": "x", "max_tokens": 2, "user_id": f"u{user}"},
                              format="json").json()  # fmt: skip
        api.post(f"/api/v1/interactions/{answer['interaction_id']}/feedback", {"kind": "thumb", "thumb": "up"}, format="json")
    experiments.experiment_evaluate(experiment=experiment)
    paired = Trial.objects.filter(source="feedback").first()
    assert paired is not None
    partner = Interaction.objects.get(pk=paired.detail["paired_with"])
    assert partner.model_version == control.name
    from interactions.services import subject_erase_by_subject

    erasure = subject_erase_by_subject(subject=partner.subject, requested_by="test")  # the subject who gave the paired rating
    assert erasure.counts["trials_unpaired"] == 1
    paired.refresh_from_db()
    assert paired.source == "heuristic"
    assert "paired_with" not in paired.detail
    assert not Trial.objects.filter(detail__paired_with=str(partner.pk)).exists()


def test_a_judge_that_answers_garbage_falls_back(training_settings):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    class Broken(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"<html>not json</html>")

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Broken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    training_settings.JUDGE_URL, training_settings.JUDGE_MODEL = f"http://127.0.0.1:{server.server_port}/v1", "judge"
    try:
        interaction = Interaction.objects.create(
            client=ApiClientFactory(), task="t", input_text="q", messages=[{"role": "user", "content": "q"}]
        )
        verdict, source, detail = experiments.verdict_for(interaction, "", "an answer")
    finally:
        server.shutdown()
    assert (verdict, source) == ("B", "heuristic")
    assert detail["judge_error"].startswith("The judge failed: RemoteError")
    assert "not JSON" in detail["judge_error"]


def test_the_admin_changes_a_running_experiments_rules_and_a_shadows_sample_rate(training_settings, client, django_user_model):
    _, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", sample_rate=0.3)
    client.force_login(django_user_model.objects.create_superuser("staff", "", "pw"))
    url = f"/admin/abtesting/experiment/{experiment.pk}/change/"
    rules = {"min_trials": 50, "max_trials": 40, "max_days": 7, "min_win_rate": 0.7, "alpha": 0.01, "sample_rate": 0.9}
    refused = client.post(url, rules)
    assert refused.status_code == 200
    assert "At least min_trials (50)." in refused.content.decode()
    saved = client.post(url, {**rules, "max_trials": 500})
    assert saved.status_code == 302
    experiment.refresh_from_db()
    assert (experiment.min_trials, experiment.max_trials, experiment.max_days, experiment.min_win_rate, experiment.alpha) == (
        50,
        500,
        7,
        0.7,
        0.01,
    )
    assert experiment.sample_rate == 0.9, "a shadow's sample rate may change: only which requests get a second answer"


def test_patch_edits_the_rules_and_sample_rate_through_the_validating_service(training_settings, make_api):
    api = make_api()
    _, challenger = plain_challenger()
    experiment = experiments.experiment_start(challenger=challenger, actor="test", sample_rate=0.2)
    url = f"/api/v1/experiments/{experiment.pk}"
    for bad, field in (
        ({"min_win_rate": 0.4}, "min_win_rate"), ({"alpha": 0}, "alpha"), ({"max_trials": 10, "min_trials": 20}, "max_trials"),
        ({"min_trials": 0}, "min_trials"), ({"sample_rate": 1.5}, "sample_rate"), ({"max_days": "soon"}, "max_days"),
        ({"max_trials": 50}, "max_trials"),  # below the running experiment's min_trials (100)
    ):  # fmt: skip
        refused = api.patch(url, bad, format="json")
        assert refused.status_code == 400, (bad, refused.content)
        assert field in refused.json()["errors"], refused.json()
    experiment.refresh_from_db()
    assert (experiment.min_trials, experiment.max_trials, experiment.sample_rate) == (100, 2000, 0.2), "nothing changed"
    changed = api.patch(url, {"min_trials": 20, "max_trials": 300, "sample_rate": 0.5, "alpha": 0.01}, format="json")
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["min_trials"], body["max_trials"], body["sample_rate"], body["alpha"]) == (20, 300, 0.5, 0.01)
    assert body["min_win_rate"] == 0.65, "what is not sent stays"
    assert body["evaluated_at"] is not None, "evaluated at once under the new rules"
    assert make_api(scopes=("read",)).patch(url, {"min_trials": 5}, format="json").status_code == 403
    experiments.experiment_stop(experiment=experiment, actor="test")
    assert api.patch(url, {"min_trials": 5}, format="json").status_code == 409, "only a running experiment's rules change"
    assert api.patch("/api/v1/experiments/999999", {"min_trials": 5}, format="json").status_code == 404
    canary = experiments.experiment_start(challenger=challenger, actor="test", mode="canary", sample_rate=0.2)
    moved = api.patch(f"/api/v1/experiments/{canary.pk}", {"sample_rate": 0.5}, format="json")
    assert moved.status_code == 400
    assert "subjects would move between arms" in moved.json()["errors"]["sample_rate"][0]
    assert api.patch(f"/api/v1/experiments/{canary.pk}", {"min_trials": 30}, format="json").status_code == 200
