"""Real training on the tiny offline model: SFT learns, DPO moves the margin, KTO runs,
cancel and resume, heartbeats, readiness, and clear refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.test_jobs import reap_as_scheduled
from tests.training.conftest import binary_dataset, exact_match, preference_dataset, sft_dataset
from training import runner, services
from training.models import TrainingJob, TrainingPolicy

pytestmark = pytest.mark.django_db


def train(*args: str) -> TrainingJob:
    call_command("train", *args, stdout=io.StringIO(), stderr=io.StringIO())
    return TrainingJob.objects.latest("pk")


@pytest.mark.slow
def test_an_sft_job_learns_a_held_out_task(training_settings, base_model_dir):
    dataset = sft_dataset()
    assert exact_match(None, base_model_dir, dataset) <= 0.1
    job = train("--task", "commands")
    assert job.status == "succeeded", job.error
    assert job.method == "sft"
    assert job.recipe["epochs"] == 30.0
    assert "learning_rate" in job.recipe_notes
    losses = [p["loss"] for p in job.loss_curve if "loss" in p]
    assert losses[-1] < losses[0] / 3
    assert job.step == job.total_steps > 0
    assert "loss=" in job.log_tail
    adapter = Path(job.adapter_path)
    assert (adapter / "adapter_model.safetensors").exists()
    meta = json.loads((adapter / "training_meta.json").read_text())
    assert meta["dataset"]["manifest_hash"] == dataset.manifest_hash
    assert meta["versions"]["trl"] == job.library_versions["trl"]
    assert meta["seed"] == 0
    assert exact_match(adapter, base_model_dir, dataset) >= 0.8


@pytest.mark.slow
def test_a_dpo_job_raises_the_margin_of_chosen_over_rejected(training_settings, base_model_dir):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curation.models import DatasetItem

    dataset = preference_dataset()
    job = train("--task", "commands", "--epochs", "3", "--learning-rate", "0.002")
    assert (job.status, job.method) == ("succeeded", "dpo"), job.error
    tokenizer = AutoTokenizer.from_pretrained(base_model_dir)
    items = list(DatasetItem.objects.filter(dataset=dataset, split="eval").values("prompt", "target", "rejected"))

    def margin(model) -> float:
        total = 0.0
        for item in items:
            prompt = tokenizer.apply_chat_template(item["prompt"], tokenize=False, add_generation_prompt=True)
            scores = []
            for answer in (item["target"], item["rejected"]):
                ids = tokenizer(prompt + answer + "<|im_end|>", return_tensors="pt", add_special_tokens=False)["input_ids"]
                start = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
                with torch.no_grad():
                    logits = model(ids).logits[0, start - 1 : -1]
                scores.append(torch.log_softmax(logits, -1).gather(1, ids[0, start:, None]).sum().item())
            total += scores[0] - scores[1]
        return total / len(items)

    base = AutoModelForCausalLM.from_pretrained(base_model_dir)
    before = margin(base)
    after = margin(PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model_dir), job.adapter_path))
    assert after > before + 1.0, (before, after)


@pytest.mark.slow
def test_a_kto_job_runs_on_imbalanced_labels(training_settings):
    binary_dataset()
    job = train("--task", "commands", "--epochs", "1")
    assert (job.status, job.method) == ("succeeded", "kto"), job.error
    assert Path(job.adapter_path, "adapter_model.safetensors").exists()


@pytest.mark.slow
def test_cancel_stops_at_the_next_step_and_resume_continues_from_the_checkpoint(training_settings):
    sft_dataset(count=64)
    job = services.job_create(
        task="commands", recipe={"epochs": 4, "batch_size": 8, "gradient_accumulation": 1, "save_steps": 5, "logging_steps": 1}
    )

    def cancel_at_step_12(step: int, total: int, last: dict) -> None:
        if step == 12:
            services.job_cancel(job=TrainingJob.objects.get(pk=job.pk))

    job = runner.job_execute(job_id=job.pk, progress=cancel_at_step_12)
    assert job.status == "cancelled"
    assert 12 <= job.step < job.total_steps
    assert job.checkpoint.endswith(f"checkpoint-{job.step}")
    assert job.resumable
    services.job_resume(job=job)
    job = runner.job_execute(job_id=job.pk)
    assert job.status == "succeeded", job.error
    assert job.attempts == 2
    logged_steps = [p["step"] for p in job.loss_curve if "loss" in p]
    assert logged_steps == sorted(logged_steps)
    assert min(s for s in logged_steps if s > 12) == 13, "continued from the checkpoint, not from step 0"


def test_a_stale_heartbeat_marks_the_job_failed_and_resumable(training_settings, tmp_path):
    from datetime import timedelta

    from django.utils import timezone

    sft_dataset(count=20)
    job = services.job_create(task="commands")
    checkpoint = Path(job.output_dir) / "checkpoints" / "checkpoint-7"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    TrainingJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now() - timedelta(minutes=10))
    fresh = services.job_create(task="commands")
    TrainingJob.objects.filter(pk=fresh.pk).update(status="running", heartbeat_at=timezone.now())
    assert reap_as_scheduled(stale_seconds=300) == "training_job failed: 1"
    job.refresh_from_db()
    assert job.status == "failed"
    assert "No heartbeat for 600 s" in job.error
    assert "Resume it to continue from its last checkpoint." in job.error
    assert "failed by the reaper" in job.log_tail
    assert job.checkpoint == str(checkpoint)
    assert job.resumable
    assert TrainingJob.objects.get(pk=fresh.pk).status == "running"


def test_unsloth_without_cuda_fails_at_once_with_a_clear_message(training_settings):
    sft_dataset(count=20)
    with pytest.raises(CommandError, match="needs a CUDA GPU"):
        train("--task", "commands", "--backend", "unsloth")
    job = TrainingJob.objects.get()
    assert job.status == "failed"
    assert "The unsloth backend needs a CUDA GPU" in job.error
    assert job.step == 0


@pytest.mark.slow
def test_qlora_trains_a_4bit_base_on_this_cpu(training_settings, base_model_dir):
    from training.backends import TrainSpec
    from training.backends.trl_backend import _load
    from training.recipes import Recipe

    model, _ = _load(TrainSpec(method="sft", base_model=str(base_model_dir), recipe=Recipe(load_in_4bit=True), train_rows=[], eval_rows=[],
                               output_dir=training_settings.ARTIFACTS_DIR))  # fmt: skip
    assert {type(m).__name__ for m in model.modules()} >= {"Linear4bit"}
    sft_dataset(count=40)
    job = train("--task", "commands", "--load-in-4bit", "--epochs", "1")
    assert job.status == "succeeded", job.error
    assert job.recipe["load_in_4bit"] is True
    assert Path(job.adapter_path, "adapter_model.safetensors").exists()


def test_bad_requests_are_refused_before_anything_starts(training_settings):
    with pytest.raises(CommandError, match="no frozen, untainted dataset"):
        train("--task", "commands")
    dataset = sft_dataset(count=20)
    with pytest.raises(CommandError, match="dpo trains on preference examples"):
        train("--task", "commands", "--method", "dpo", "--dataset", str(dataset.pk))
    with pytest.raises(CommandError, match="Name a --task"):
        train()
    dataset.tainted, dataset.tainted_reason = True, "erased"
    dataset.save(update_fields=["tainted", "tainted_reason"])
    with pytest.raises(CommandError, match="tainted"):
        train("--task", "commands", "--dataset", str(dataset.pk))
    assert not TrainingJob.objects.exists()


def test_readiness_names_each_short_threshold(training_settings):
    from datetime import timedelta

    from django.utils import timezone

    TrainingPolicy.objects.create(
        task="commands", min_examples=30, min_gold_examples=25, min_average_quality=0.5, min_hours_between_jobs=24
    )
    state = services.readiness(task="commands")
    assert not state["ready"]
    assert {line.split(":")[0] for line in state["short"]} == {"examples", "gold_examples", "average_quality"}
    sft_dataset(count=40)
    assert services.readiness(task="commands")["ready"]
    job = services.job_create(task="commands")
    state = services.readiness(task="commands")
    assert [line.split(":")[0] for line in state["short"]] == ["hours_since_last_job"]
    TrainingJob.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=25))
    TrainingPolicy.objects.filter(task="commands").update(min_average_quality=1.5)
    state = services.readiness(task="commands")
    assert [line.split(":")[0] for line in state["short"]] == ["average_quality"]
    TrainingPolicy.objects.filter(task="commands").update(enabled=False, min_average_quality=0)
    assert [line.split(":")[0] for line in services.readiness(task="commands")["short"]] == ["enabled"]


def test_the_weekly_task_trains_only_ready_tasks_and_says_why(training_settings):
    from training import tasks

    assert tasks.weekly_training() == "no task has curated examples or a training policy"
    TrainingPolicy.objects.create(task="commands", min_examples=30)
    TrainingPolicy.objects.create(task="empty", min_examples=30)
    sft_dataset(count=40)
    report = tasks.weekly_training()
    assert "commands: started job" in report
    assert "empty: not ready under its policy (examples: 0 of 30 needed (short by 30))" in report
    job = TrainingJob.objects.get()  # queued on commit; the test's transaction never commits
    assert (job.task, job.status, job.dataset.name) == ("commands", "queued", "weekly")


def test_the_api_starts_shows_and_cancels_jobs(training_settings, make_api):
    sft_dataset(count=20)
    api = make_api(scopes=("admin",))
    response = api.post("/api/v1/training/jobs", {"task": "commands", "recipe": {"epochs": 1}})
    assert response.status_code == 201, response.json()
    job_id = response.json()["id"]
    assert api.get(f"/api/v1/training/jobs/{job_id}").json()["status"] == "queued"
    assert api.post(f"/api/v1/training/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert api.post(f"/api/v1/training/jobs/{job_id}/cancel").status_code == 409
    assert api.post("/api/v1/training/jobs", {"task": "commands", "recipe": {"lora_rank": -1}}).json()["errors"] == {
        "recipe.lora_rank": ["Must be a positive integer."]
    }
    assert api.post("/api/v1/training/jobs", {"task": "commands", "method": "kto"}).status_code == 400
    status = api.get("/api/v1/training/status", {"task": "commands"}).json()
    assert status["ready"] is False
    assert status["checks"]["examples"]["value"] == 20
    assert api.get("/api/v1/training/jobs/999").status_code == 404
    assert make_api(scopes=("read",)).get(f"/api/v1/training/jobs/{job_id}").status_code == 403


def test_a_half_written_checkpoint_is_skipped(tmp_path):
    from training.backends.trl_backend import last_checkpoint

    for step, complete in ((5, True), (10, True), (15, False)):
        directory = tmp_path / "checkpoints" / f"checkpoint-{step}"
        directory.mkdir(parents=True)
        if complete:
            (directory / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path).name == "checkpoint-10"
    assert last_checkpoint(tmp_path / "nothing") is None
