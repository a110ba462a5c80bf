"""A seeded loop for the dashboard's tests: traffic with feedback, curated examples, frozen
datasets, a finished job whose version is the champion, a running experiment with trials, a
tainted version, a running job and a failed one, and an experiment stopped by its sample-ratio
check. Rows come from factories and the services; the training runs themselves are not run
(jobs are rows with the numbers a run leaves)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from abtesting import experiments
from abtesting.models import Experiment, Trial
from registry import services as registry
from tests.factories import ApiClientFactory, FeedbackFactory, InteractionFactory
from tests.training.conftest import sft_dataset
from training.models import TrainingJob, TrainingPolicy

TASK = "commands"


def curve(steps: int, start: float = 2.5) -> list[dict[str, Any]]:
    points = [{"step": s, "epoch": s / steps, "loss": round(start * 0.85**s + 0.2, 4)} for s in range(1, steps + 1)]
    for point in points[:: max(steps // 3, 1)]:
        point["eval_loss"] = round(point["loss"] * 1.1, 4)
    return points


def finished_job(dataset: Any, **fields: Any) -> TrainingJob:
    now = timezone.now()
    values = {"task": dataset.task, "dataset": dataset, "base_model": "base", "method": "sft", "status": "succeeded",
              "adapter_path": f"/artifacts/job-{dataset.pk}", "step": 12, "total_steps": 12, "progress": 100.0,
              "loss_curve": curve(12), "eval_loss": 0.4, "metrics": {"eval_loss": 0.4}, "started_at": now - timedelta(minutes=5),
              "finished_at": now, "heartbeat_at": now}  # fmt: skip
    return TrainingJob.objects.create(**{**values, **fields})


def seed_loop(task: str = TASK, *, trials: int = 30) -> dict[str, Any]:
    client = ApiClientFactory()
    traffic = [InteractionFactory(client=client, task=task, model_version=f"base-{task}-v1", latency_ms=100 + i) for i in range(8)]
    for interaction in traffic[:5]:
        FeedbackFactory(interaction=interaction, score=5)
    TrainingPolicy.objects.create(task=task, min_examples=10, min_hours_between_jobs=0)
    first = sft_dataset(count=24, seed=1)
    champion = registry.version_register_job(job=finished_job(first))
    registry.version_promote(version=champion, actor="test", reason="seeded", allow_unapproved=True)
    second = sft_dataset(count=12, seed=2)
    challenger = registry.version_register_job(job=finished_job(second, loss_curve=curve(10, 2.0)))
    experiment = experiments.experiment_start(challenger=challenger, actor="test", sample_rate=1.0, min_trials=200)
    for i in range(trials):
        interaction = InteractionFactory(client=client, task=task, model_version=champion.name)
        Trial.objects.create(
            experiment=experiment, interaction=interaction, shown="A", output_a=f"ls -l {i}", output_b=f"ls -la {i}",
            verdict="B" if i % 3 else "A", source="ground_truth", ground_truth=f"ls -la {i}", score_a=0.5, score_b=1.0,
            latency_a_ms=10, latency_b_ms=12,
        )  # fmt: skip
    third = sft_dataset(count=8, seed=3)
    tainted = registry.version_register_job(job=finished_job(third))
    registry.versions_taint(dataset_ids=[third.pk], reason="erasure 1 removed a subject's rows")
    running = TrainingJob.objects.create(
        task=task, dataset=first, base_model="base", method="sft", status="running", step=3, total_steps=10, progress=30.0,
        loss_curve=curve(3), started_at=timezone.now(), heartbeat_at=timezone.now(),
    )  # fmt: skip
    failed = TrainingJob.objects.create(
        task=task, dataset=first, base_model="base", method="sft", status="failed", finished_at=timezone.now(),
        error="RuntimeError: CUDA out of memory\n\nTraceback ...",
    )  # fmt: skip
    stopped = Experiment.objects.create(
        task=task, control=champion, challenger=tainted, sample_rate=0.5, min_trials=10, max_trials=100, max_days=7, min_win_rate=0.6,
        alpha=0.05, status="stopped", started_by="test", ended_at=timezone.now(),
        reason="sample ratio mismatch: 90 control vs 10 challenger subjects", stats={"sample_ratio": {"alarm": True, "p": 1e-9}},
    )  # fmt: skip
    return {"champion": champion, "challenger": challenger, "tainted": tainted, "experiment": experiment, "running": running,
            "failed": failed, "stopped": stopped, "datasets": [first, second, third]}  # fmt: skip


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client
