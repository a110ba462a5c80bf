"""A training process killed mid-way (SIGKILL, no chance to clean up) is failed by the reaper,
resumed from its last checkpoint and ends with the same weights as an uninterrupted run with the
same seed; a training job outlives its database sessions being terminated; Ctrl-C stops cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.test_jobs import child_env, needs_postgres, reap_once_stale, side_session, terminate_backends, worker_pid
from tests.test_run_platform import ROOT, _database_url
from tests.training.conftest import sft_dataset
from training import runner, services
from training.models import TrainingJob

RECIPE = {"epochs": 4, "batch_size": 8, "gradient_accumulation": 1, "save_steps": 5, "logging_steps": 1, "seed": 3}


def _adapter_tensors(path: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "adapter_model.safetensors"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_job_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(training_settings):
    dataset = sft_dataset(count=64)
    reference = runner.job_execute(job_id=services.job_create(task="commands", dataset_id=dataset.pk, recipe=RECIPE).pk)
    assert reference.status == "succeeded", reference.error

    env = child_env(BASE_MODEL=str(training_settings.BASE_MODEL), ARTIFACTS_DIR=str(training_settings.ARTIFACTS_DIR))
    args = ["--task", "commands", "--dataset", str(dataset.pk), "--epochs", "4", "--batch-size", "8", "--save-steps", "5", "--seed", "3"]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "train", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        job = None
        while time.monotonic() < deadline:
            job = TrainingJob.objects.exclude(pk=reference.pk).first()
            if job and job.output_dir and list(Path(job.output_dir, "checkpoints").glob("checkpoint-10")):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the training process wrote no checkpoint")
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    job.refresh_from_db()
    assert job.status == "running", "a killed worker leaves the row running..."
    assert worker_pid(job) == process.pid
    assert reap_once_stale(stale_seconds=1) == "training_job failed: 1", "...until the reaper sees its heartbeat stop"
    job.refresh_from_db()
    assert job.status == "failed"
    assert "No heartbeat for" in job.error
    assert job.resumable
    killed_at = int(job.checkpoint.rsplit("-", 1)[1])
    assert 5 <= killed_at < job.total_steps  # checkpoint-10 when the kill missed its save, else 5

    logged_before = len(job.loss_curve)
    job = runner.job_execute(job_id=services.job_resume(job=job).pk)
    assert job.status == "succeeded", job.error
    assert job.step == reference.step
    resumed_steps = [p["step"] for p in job.loss_curve[logged_before:] if "loss" in p]
    every = job.recipe["logging_steps"]
    assert killed_at < resumed_steps[0] <= killed_at + every, "continued from the checkpoint, not from step 0"
    expected, resumed = _adapter_tensors(reference.adapter_path), _adapter_tensors(job.adapter_path)
    assert expected.keys() == resumed.keys()
    worst = max((expected[name] - resumed[name]).abs().max().item() for name in expected)
    assert worst < 1e-4, worst


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_ctrl_c_in_the_train_command_stops_cleanly_with_a_resumable_checkpoint(training_settings):
    dataset = sft_dataset(count=64)
    env = {
        **os.environ, "DATABASE_URL": _database_url(), "DEBUG": "true", "BASE_MODEL": str(training_settings.BASE_MODEL),
        "ARTIFACTS_DIR": str(training_settings.ARTIFACTS_DIR), "HF_HUB_OFFLINE": "1",
    }  # fmt: skip
    args = ["--task", "commands", "--dataset", str(dataset.pk), "--epochs", "4", "--batch-size", "8"]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "train", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not TrainingJob.objects.filter(step__gte=3).exists():
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    job = TrainingJob.objects.get()
    assert job.status == "cancelled"
    assert f"resume with: manage.py train --resume {job.pk}" in output
    assert job.resumable
    assert job.checkpoint.endswith(f"checkpoint-{job.step}")
    assert job.step < job.total_steps


@pytest.mark.slow
@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_training_job_outlives_its_database_sessions_being_terminated(training_settings, caplog):
    """The blip that killed jobs: every session of the app is terminated mid-training (the job's,
    and the heartbeat's if it is writing); the next cancel check and beat reconnect."""
    training_settings.JOB_HEARTBEAT_SECONDS = 0.05
    sft_dataset(count=16)
    job = services.job_create(task="commands", recipe={"epochs": 1, "batch_size": 4, "gradient_accumulation": 1, "logging_steps": 1})
    terminated: list[int] = []

    def blip_at_step_2(step: int, total: int, last: dict) -> None:
        if step == 2:
            with side_session() as session:
                terminated.append(terminate_backends(session))

    job = runner.job_execute(job_id=job.pk, progress=blip_at_step_2)
    assert terminated[0] >= 1
    assert "the database connection broke; reconnecting" in caplog.text
    assert job.status == "succeeded", job.error
    assert (job.step, job.total_steps, job.progress) == (4, 4, 100.0)
    assert job.attempts == 1
