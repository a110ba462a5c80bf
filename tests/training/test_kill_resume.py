"""A supervisor killed mid-way (SIGKILL, no chance to clean up) takes its training processes
along and is failed by the reaper, resumable (a killed training process and the resume:
test_launch.py); a training job outlives its database sessions being terminated; Ctrl-C stops
cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.test_jobs import child_env, needs_postgres, reap_once_stale, side_session, terminate_backends, worker_pid
from tests.test_run_platform import ROOT, _database_url
from tests.training.conftest import sft_dataset
from tests.training.test_launch import _training_processes
from training import runner, services
from training.models import TrainingJob


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_supervisor_takes_its_training_processes_along_and_the_reaper_fails_the_job_resumable(training_settings):
    dataset = sft_dataset(count=64)
    env = child_env(BASE_MODEL=str(training_settings.BASE_MODEL), ARTIFACTS_DIR=str(training_settings.ARTIFACTS_DIR))
    args = ["--task", "commands", "--dataset", str(dataset.pk), "--epochs", "4", "--batch-size", "8", "--save-steps", "5", "--seed", "3"]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "train", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 180
        job = None
        while time.monotonic() < deadline:
            job = TrainingJob.objects.first()
            if job and job.output_dir and list(Path(job.output_dir, "checkpoints").glob("checkpoint-10")):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the training processes wrote no checkpoint")
        training = _training_processes(process.pid)
        assert len(training) == 2, "the launcher and one rank"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    _, alive = psutil.wait_procs(training, timeout=20)
    assert not alive, f"training processes outlived their supervisor: {alive}"
    job.refresh_from_db()
    assert job.status == "running", "a killed supervisor leaves the row running..."
    assert worker_pid(job) == process.pid
    assert reap_once_stale(stale_seconds=1) == "training_job failed: 1", "...until the reaper sees its heartbeat stop"
    job.refresh_from_db()
    assert job.status == "failed"
    assert "No heartbeat for" in job.error
    assert job.resumable
    assert 5 <= int(job.checkpoint.rsplit("-", 1)[1]) < job.total_steps


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
