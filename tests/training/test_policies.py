"""Training policies: one answer to "is this task ready" (status, admin, weekly schedule), and the
policy edited through the API, `manage.py training_policy` and the admin, all validated alike."""

from __future__ import annotations

import io
import json
import random

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.training.conftest import command, make_examples
from training import services, tasks
from training.models import TrainingJob, TrainingPolicy

pytestmark = pytest.mark.django_db


def examples(count: int, task: str = "commands", tier: str = "gold") -> None:
    rng = random.Random(count)
    make_examples("sft", [dict(zip(("prompt", "target"), command(rng), strict=True)) for _ in range(count)], task=task)
    if tier != "gold":
        from curation.models import TrainingExample

        TrainingExample.objects.filter(task=task).update(tier=tier)


def test_with_no_saved_policy_the_weekly_work_trains_what_the_status_calls_ready(training_settings, make_api):
    examples(100)
    examples(40, task="small")
    status = make_api(scopes=("admin",)).get("/api/v1/training/status", {"task": "commands"}).json()
    assert (status["ready"], status["policy"]["saved"], status["checks"]["examples"]["needed"]) == (True, False, 100)
    assert not TrainingPolicy.objects.exists()
    report = tasks.weekly_training().splitlines()
    job = TrainingJob.objects.get()  # queued on commit; the test's transaction never commits
    assert (job.task, job.status, job.dataset.name, job.dataset.stats["count"]) == ("commands", "queued", "weekly", 100)
    assert report == [
        f"commands: started job {job.pk} on dataset {job.dataset_id} under the default policy",
        "small: not ready under the default policy (examples: 40 of 100 needed (short by 60))",
    ]
    assert services.readiness(task="commands")["short"] == ["hours_since_last_job: 0.0 of 24 needed (short by 24)"]


def test_a_saved_policy_opts_a_task_out_or_in(training_settings):
    assert tasks.weekly_training() == "no task has curated examples or a training policy"
    examples(100)
    examples(30, task="small")
    services.policy_update(task="commands", changes={"auto_train": False})
    services.policy_update(task="small", changes={"min_examples": 30})
    services.policy_update(task="off", changes={"enabled": "false"})
    report = tasks.weekly_training().splitlines()
    assert report[0] == "commands: skipped (its policy turns auto-training off)"
    assert report[1] == "off: skipped (its policy turns training off)"
    assert report[2].startswith("small: started job")
    assert report[2].endswith("under its policy")
    assert services.readiness(task="commands")["ready"], "auto-train off still answers the readiness question"


def test_readiness_counts_what_the_weekly_dataset_would_hold(training_settings):
    examples(120, tier="bronze")
    state = services.readiness(task="commands")
    assert state["checks"]["examples"]["value"] == 0, "the default policy freezes silver and better"
    services.policy_update(task="commands", changes={"min_tier": "bronze"})
    assert services.readiness(task="commands")["ready"]
    services.policy_update(task="commands", changes={"method": "dpo"})
    assert services.readiness(task="commands")["checks"]["examples"]["value"] == 0, "DPO trains on preference pairs"


def test_the_policy_api_reads_defaults_and_writes_through_the_service(training_settings, make_api):
    examples(10)
    api = make_api(scopes=("admin",))
    default = api.get("/api/v1/training/policies/commands").json()
    assert (default["saved"], default["min_examples"], default["ready"]) == (False, 100, False)
    assert [p["task"] for p in api.get("/api/v1/training/policies").json()] == ["commands"]

    patched = api.patch("/api/v1/training/policies/commands", {"min_examples": 10, "min_tier": "gold"}, format="json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["saved"], patched.json()["min_examples"], patched.json()["ready"]) == (True, 10, True)
    replaced = api.put("/api/v1/training/policies/commands", {**patched.json(), "auto_train": False, "min_tier": None}, format="json")
    assert replaced.status_code == 400
    assert replaced.json()["errors"] == {"min_tier": ["Must be one of gold, silver, bronze."]}
    replaced = api.put("/api/v1/training/policies/commands", {"auto_train": False}, format="json")
    assert (replaced.json()["auto_train"], replaced.json()["min_examples"], replaced.json()["min_tier"]) == (False, 100, "silver")

    bad = api.patch(
        "/api/v1/training/policies/commands",
        {"min_examples": 0, "min_average_quality": 2, "min_gold_examples": 2**31, "method": "rlhf", "enabled": "perhaps", "colour": "red"},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["errors"] == {
        "min_examples": ["Must be a whole number from 1 to 1,000,000,000."],
        "min_average_quality": ["Must be a number from 0 to 1 (a quality score)."],
        "min_gold_examples": ["Must be a whole number from 0 to 1,000,000,000."],
        "method": ["Must be one of (empty), sft, dpo, kto."],
        "enabled": ["Must be true or false."],
        "colour": [f"Unknown field; a policy has {', '.join(services.POLICY_FIELDS)}."],
    }
    assert api.patch("/api/v1/training/policies/commands", [1], format="json").status_code == 400
    assert TrainingPolicy.objects.get().min_examples == 100, "a refused change stores nothing"
    assert api.get("/api/v1/training/policies").json()[0]["auto_train"] is False

    reader = make_api(scopes=("read", "ingest"))
    assert reader.get("/api/v1/training/policies/commands").status_code == 403
    assert reader.get("/api/v1/training/policies").status_code == 403
    assert reader.patch("/api/v1/training/policies/commands", {"min_examples": 5}, format="json").status_code == 403


def policy_command(*args: str) -> str:
    out = io.StringIO()
    call_command("training_policy", *args, stdout=out)
    return out.getvalue()


def test_the_policy_command_shows_sets_and_refuses_in_one_line(training_settings):
    examples(12)
    shown = policy_command("commands")
    assert shown.splitlines()[0] == "commands: default policy (none saved)"
    assert "not ready: examples: 12 of 100 needed (short by 88)" in shown
    shown = policy_command("commands", "--set", "min_examples=12", "--set", "auto_train=no")
    assert shown.splitlines()[0] == "commands: saved policy"
    assert "  auto_train = False" in shown
    assert shown.strip().endswith("ready")
    state = json.loads(policy_command("commands", "--json"))
    assert (state["min_examples"], state["auto_train"], state["ready"]) == (12, False, True)
    assert json.loads(policy_command("commands", "--reset", "--json"))["min_examples"] == 100

    with pytest.raises(
        CommandError, match=r"^The training policy is invalid\. \(min_examples: Must be a whole number from 1 to 1,000,000,000\.\)$"
    ):
        policy_command("commands", "--set", "min_examples=lots")
    with pytest.raises(CommandError, match="--set takes FIELD=VALUE, got 'min_examples'"):
        policy_command("commands", "--set", "min_examples")
    with pytest.raises(CommandError, match="'no task!' is not a task name"):
        policy_command("no task!", "--set", "enabled=true")
    assert TrainingPolicy.objects.get().min_examples == 100


def test_the_admin_validates_policies_with_the_same_service(client, training_settings):
    client.force_login(User.objects.create_superuser("staff", "", "pw"))
    form = {
        "task": "commands", "enabled": "on", "auto_train": "on", "min_examples": "50", "min_gold_examples": "0",
        "min_average_quality": "1.5", "min_hours_between_jobs": "24", "method": "", "min_tier": "copper",
    }  # fmt: skip
    page = client.post("/admin/training/trainingpolicy/add/", form).content.decode()
    assert "Must be a number from 0 to 1 (a quality score)." in page
    assert "Must be one of gold, silver, bronze." in page
    assert not TrainingPolicy.objects.exists()
    response = client.post("/admin/training/trainingpolicy/add/", {**form, "min_average_quality": "0.5", "min_tier": "gold"})
    assert response.status_code == 302
    policy = TrainingPolicy.objects.get()
    assert (policy.task, policy.min_examples, policy.min_average_quality, policy.min_tier) == ("commands", 50, 0.5, "gold")
    change = {**form, "task": "other", "min_average_quality": "0", "min_tier": "bronze"}
    assert client.post(f"/admin/training/trainingpolicy/{policy.pk}/change/", change).status_code == 302
    policy.refresh_from_db()
    assert (policy.task, policy.min_average_quality, policy.min_tier) == ("commands", 0.0, "bronze"), "the task stays"


@pytest.mark.slow
def test_run_schedule_runs_the_weekly_training_at_once(training_settings, django_capture_on_commit_callbacks):
    from django_q.models import Schedule

    from registry.models import ModelVersion

    call_command("setup_schedules", stdout=io.StringIO())
    planned = Schedule.objects.get(name="weekly-training").next_run
    examples(100)
    out = io.StringIO()
    with django_capture_on_commit_callbacks() as queued:
        call_command("run_schedule", "weekly-training", stdout=out)
    job = TrainingJob.objects.get()
    TrainingJob.objects.filter(pk=job.pk).update(recipe={**job.recipe, "epochs": 1.0})  # 7 steps: the test stays short
    for callback in queued:  # what the commit does: the job goes to the queue, which runs it now (Q_SYNC in tests)
        callback()
    job.refresh_from_db()
    assert out.getvalue().startswith(f"commands: started job {job.pk} on dataset {job.dataset_id} under the default policy")
    assert (job.status, job.requested_by, job.dataset.stats["count"]) == ("succeeded", "schedule", 100), job.error
    assert ModelVersion.objects.filter(training_job=job).exists()
    assert Schedule.objects.get(name="weekly-training").next_run == planned, "running now leaves the cadence alone"
