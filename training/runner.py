"""Run one training job: the same code for `manage.py train`, the django-q2 task and the admin.

The lifecycle (claim, heartbeat, failure, cancel) is learning_platform.jobs' runner; this module
is the work, `train(context)`, which only talks to the row through the context (stage, log,
progress, cancel check), so that it can move into a child process.
Progress, the loss curve and log lines reach the job row through the runner's heartbeat; a cancel
request (or Ctrl-C in the command) stops it at the next step with a checkpoint to resume from.
"""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from curation import exporters, selectors
from curation.models import DatasetItem
from learning_platform.jobs import JobCancelled, JobContext, job_run

from .backends import BackendError, Hooks, TrainSpec, select
from .backends.trl_backend import last_checkpoint
from .models import TrainingJob
from .recipes import Recipe
from .signals import job_succeeded

logger = logging.getLogger(__name__)
FORMAT_FOR_METHOD = {"sft": "messages", "dpo": "dpo", "kto": "kto"}
Progress = Callable[[int, int, dict[str, Any]], None]


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "unsloth", "bitsandbytes"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found


def _rows(job: TrainingJob, split: str) -> list[dict[str, Any]]:
    to_record = exporters.FORMATS[FORMAT_FOR_METHOD[job.method]][0]
    return [to_record(item) for item in selectors.dataset_items(dataset=job.dataset, split=split)]


class _Reporter:
    """The backend's hooks: progress, the loss curve and log lines go to the job row through the
    runner's heartbeat; whether to stop is a cancel request in the row, or Ctrl-C in this process."""

    def __init__(self, context: JobContext, progress: Progress | None) -> None:
        self.context, self.job, self.progress = context, context.job, progress
        self.curve: list[dict[str, Any]] = list(self.job.loss_curve)
        self.started = time.monotonic()
        self.start_step = self.job.step
        self.interrupted = False
        self.cancel = False

    def on_log(self, record: dict[str, Any]) -> None:
        clean = {k: round(v, 6) if isinstance(v, float) else v for k, v in record.items() if isinstance(v, int | float)}
        self.curve.append(clean)
        evals = [r["eval_loss"] for r in self.curve if "eval_loss" in r]
        self.context.stage(loss_curve=list(self.curve), eval_loss=evals[-1] if evals else None)
        self.context.log(" ".join(f"{k}={v}" for k, v in clean.items()))
        self.context.flush()

    def on_step(self, step: int, total: int) -> None:
        done = max(1, step - self.start_step)
        eta = round((time.monotonic() - self.started) / done * (total - step), 1)
        self.context.stage(step=step, total_steps=total, eta_seconds=eta)
        self.context.progress(100.0 * step / total if total else 0.0)
        if self.progress:
            self.progress(step, total, self.curve[-1] if self.curve else {})

    def should_stop(self) -> bool:
        """Asked after every step: one indexed look-up, so a cancel stops at the next step."""
        if not self.interrupted and not self.cancel:
            self.cancel = self.context.cancel_requested()
        return self.cancel or self.interrupted


def _recipe(values: dict[str, Any]) -> Recipe:
    modules = values.get("target_modules")
    return Recipe(**{**values, "target_modules": tuple(modules) if modules else None})


def _meta(job: TrainingJob, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "job": job.pk, "task": job.task, "method": job.method, "base_model": job.base_model,
        "dataset": {"id": job.dataset_id, "manifest_hash": job.dataset.manifest_hash, "version": job.dataset.version},
        "parent_job": job.parent_job_id, "recipe": job.recipe, "seed": job.seed, "versions": job.library_versions, "metrics": metrics,
    }  # fmt: skip


Hook = Callable[[_Reporter], None]


def job_execute(
    *,
    job_id: int,
    progress: Progress | None = None,
    reporter_hook: Hook | None = None,
) -> TrainingJob:
    """Run a queued job through the job runner (learning_platform.jobs) and return it as it
    ended. A job that is not queued (finished, or running elsewhere: a task delivered twice) is
    returned as it is. A failure is recorded on the row (keeping the last checkpoint), then
    re-raised; a cancel request or Ctrl-C ends it cancelled with a checkpoint to resume from."""
    finished: list[bool] = []

    def work(context: JobContext) -> None:
        train(context, progress=progress, reporter_hook=reporter_hook)
        finished.append(True)

    job = job_run(TrainingJob, job_id, work)
    if finished and job.status == TrainingJob.Status.SUCCEEDED:
        job_succeeded.send(sender=TrainingJob, job=job)
    return job


def train(
    context: JobContext,
    *,
    progress: Progress | None = None,
    reporter_hook: Hook | None = None,
) -> None:
    """The work of a training job (the lifecycle is the runner's): train, checkpoint, write the
    adapter and its metadata; what the row should show is staged on `context`."""
    job: TrainingJob = context.job  # type: ignore[assignment]
    context.stage(library_versions=library_versions())
    reporter = _Reporter(context, progress)
    if reporter_hook:
        reporter_hook(reporter)
    backend = select(job.backend, load_in_4bit=bool(job.recipe.get("load_in_4bit")))
    resume = Path(job.checkpoint) if job.checkpoint and Path(job.checkpoint).exists() else None
    parent = Path(job.parent_job.adapter_path) if job.parent_job and job.parent_job.adapter_path else None
    hooks = Hooks(on_log=reporter.on_log, on_step=reporter.on_step, should_stop=reporter.should_stop)
    spec = TrainSpec(
        method=job.method,
        base_model=job.base_model,
        recipe=_recipe(job.recipe),
        train_rows=_rows(job, DatasetItem.Split.TRAIN),
        eval_rows=_rows(job, DatasetItem.Split.EVAL),
        output_dir=Path(job.output_dir),
        resume_from=resume,
        parent_adapter=parent,
        hooks=hooks,
    )
    if not spec.train_rows:
        raise BackendError("The dataset's train split is empty.")
    try:
        result = backend.train(spec)
    except Exception:
        context.stage(checkpoint=str(last_checkpoint(Path(job.output_dir)) or job.checkpoint or ""))
        raise
    if result.stopped_early:
        context.stage(checkpoint=str(result.last_checkpoint or ""))
        why = "interrupted" if reporter.interrupted else "cancel requested"
        raise JobCancelled(f"stopped at step {job.step}: {why}")
    (result.adapter_dir / "training_meta.json").write_text(json.dumps(_meta(job, result.metrics), indent=2))
    context.stage(
        adapter_path=str(result.adapter_dir),
        metrics=result.metrics,
        eval_loss=result.metrics.get("eval_loss"),
        checkpoint=str(result.last_checkpoint or ""),
    )
