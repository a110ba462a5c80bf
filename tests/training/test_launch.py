"""A training job runs in processes of its own, started through torchrun: two of them (gloo on
this CPU) train one job end to end and the registry gets its version, while the process that
ran the job never imported the ML stack; a training process killed mid-way fails the job at
once, resumable, and the resumed run ends with the weights of an uninterrupted one; a killed
supervisor takes its training processes with it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from registry.models import ModelVersion
from tests.test_jobs import child_env
from tests.test_run_platform import ROOT
from tests.training.conftest import sft_dataset
from training import runner, services
from training.models import TrainingJob

RECIPE = {"epochs": 4, "batch_size": 8, "gradient_accumulation": 1, "save_steps": 5, "logging_steps": 1, "seed": 3}
ML = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "unsloth")


def _training_processes(parent: int) -> list[psutil.Process]:
    """The launcher and its ranks below `parent`."""
    found = psutil.Process(parent).children(recursive=True)
    return [p for p in found if "torch.distributed.run" in " ".join(p.cmdline()) or "training.child" in " ".join(p.cmdline())]


def _ranks(parent: int) -> list[psutil.Process]:
    """The ranks alone (the launcher's command line names training.child too)."""
    return [p for p in _training_processes(parent) if "torch.distributed.run" not in " ".join(p.cmdline())]


def _adapter_tensors(path: str) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "adapter_model.safetensors"))


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_two_processes_train_one_job_and_register_it_while_the_supervisor_imports_no_ml_library(training_settings):
    dataset = sft_dataset(count=48)
    options = {"task": "commands", "dataset": dataset.pk, "epochs": 2, "batch_size": 4, "save_steps": 100}
    code = (
        "import django, io, sys; django.setup(); from django.core.management import call_command; "
        f"call_command('train', **{options!r}, stdout=io.StringIO(), stderr=io.StringIO()); "
        f"print(sorted(m for m in {ML!r} if m in sys.modules))"
    )
    env = child_env(
        BASE_MODEL=str(training_settings.BASE_MODEL), ARTIFACTS_DIR=str(training_settings.ARTIFACTS_DIR), TRAINING_PROCESSES="2",
        DJANGO_SETTINGS_MODULE="learning_platform.settings",
    )  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]", "the supervising process imported the ML stack"
    job = TrainingJob.objects.get()
    assert job.status == "succeeded", job.error
    assert "training on 2 process(es)" in job.log_tail
    assert job.recipe_notes["processes"] == "2 processes (TRAINING_PROCESSES), 4 rows each: 8 rows a step"
    assert job.recipe_notes["backend"] == "trl: no CUDA GPU here (unsloth needs one)"
    assert job.step == job.total_steps > 0
    assert [p["step"] for p in job.loss_curve if "loss" in p] == sorted({p["step"] for p in job.loss_curve if "loss" in p})
    version = ModelVersion.objects.get(training_job=job)
    assert version.adapter_path == job.adapter_path
    meta = json.loads(Path(job.adapter_path, "training_meta.json").read_text())
    assert meta["job"] == job.pk
    assert not list(Path(job.output_dir, "launch").glob("*.json")), "the rows handed to the processes are removed"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_killed_training_process_fails_the_job_at_once_and_resume_matches_an_uninterrupted_run(training_settings):
    dataset = sft_dataset(count=64)
    reference = runner.job_execute(job_id=services.job_create(task="commands", dataset_id=dataset.pk, recipe=RECIPE).pk)
    assert reference.status == "succeeded", reference.error
    job = services.job_create(task="commands", dataset_id=dataset.pk, recipe=RECIPE)
    killed: list[int] = []

    def kill_the_rank_at_step_10(step: int, total: int, last: dict) -> None:
        if step >= 10 and not killed:
            for rank in _ranks(os.getpid()):
                rank.kill()
                killed.append(rank.pid)

    with pytest.raises(runner.TrainingFailed, match="without saying how"):
        runner.job_execute(job_id=job.pk, progress=kill_the_rank_at_step_10)
    assert killed
    job.refresh_from_db()
    assert job.status == "failed", "failed by its supervisor, with no reaper needed"
    assert "SIGKILL" in job.error
    assert job.resumable
    assert not _training_processes(os.getpid())
    killed_at = int(job.checkpoint.rsplit("-", 1)[1])
    assert killed_at in (5, 10)

    logged_before = len(job.loss_curve)
    job = runner.job_execute(job_id=services.job_resume(job=job).pk)
    assert job.status == "succeeded", job.error
    assert (job.step, job.attempts) == (reference.step, 2)
    resumed_steps = [p["step"] for p in job.loss_curve[logged_before:] if "loss" in p]
    assert resumed_steps[0] == killed_at + 1, "continued from the checkpoint, not from step 0"
    expected, resumed = _adapter_tensors(reference.adapter_path), _adapter_tensors(job.adapter_path)
    assert expected.keys() == resumed.keys()
    worst = max((expected[name] - resumed[name]).abs().max().item() for name in expected)
    assert worst < 1e-4, worst
