"""Run one training job: the same code for `manage.py train`, the django-q2 task and the admin.

The lifecycle (claim, heartbeat, failure, cancel) is learning_platform.jobs' runner, in this
process; the training itself runs in processes of its own, started through torchrun
(training/launch.py, training/child.py), so this process never imports torch or a backend.
`train(context)` hands them the rows and the recipe, turns what rank 0 reports into the job row
(step, loss curve, log lines, through the runner's heartbeat), forwards a cancel request or
Ctrl-C to them as SIGINT (they stop at the next step with a checkpoint to resume from), and maps
how they ended: succeeded, cancelled, or failed with their traceback (or how they died).
"""

from __future__ import annotations

import logging
import platform
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from curation import exporters, selectors
from curation.models import DatasetItem
from learning_platform.jobs import JobCancelled, JobContext, job_run

from .backends import BackendError, last_checkpoint
from .launch import Launch
from .models import TrainingJob
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


class TrainingFailed(BackendError):
    """The training processes failed; the message is their reason and traceback."""


class _Reporter:
    """What rank 0 reports becomes the job row: progress, the loss curve and log lines go through
    the runner's heartbeat; after every step, one indexed look-up for a cancel request."""

    def __init__(self, context: JobContext, launch: Launch, progress: Progress | None) -> None:
        self.context, self.job, self.launch, self.progress = context, context.job, launch, progress
        self.curve: list[dict[str, Any]] = list(self.job.loss_curve)
        self.started = time.monotonic()
        self.start_step = self.job.step

    def __call__(self, event: dict[str, Any]) -> None:
        if "stage" in event:
            self.context.stage(**event["stage"])
        if "log" in event:
            self.context.log(event["log"])
        if "record" in event:
            self.on_log(event["record"])
        if "step" in event:
            self.on_step(event["step"], event["total"])

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
        if not self.launch.stop_reason and self.context.cancel_requested():
            self.launch.stop("cancel requested")


@contextmanager
def _ctrl_c_stops(launch: Launch) -> Iterator[None]:
    """Ctrl-C (SIGINT to this process) asks the training processes to stop at their next step,
    instead of killing this one. Only the main thread can take signals; elsewhere, nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: launch.stop("interrupted"))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _meta(job: TrainingJob, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "job": job.pk, "task": job.task, "method": job.method, "base_model": job.base_model,
        "dataset": {"id": job.dataset_id, "manifest_hash": job.dataset.manifest_hash, "version": job.dataset.version},
        "parent_job": job.parent_job_id, "recipe": job.recipe, "seed": job.seed, "versions": job.library_versions, "metrics": metrics,
    }  # fmt: skip


def job_execute(*, job_id: int, progress: Progress | None = None) -> TrainingJob:
    """Run a queued job through the job runner (learning_platform.jobs) and return it as it
    ended. A job that is not queued (finished, or running elsewhere: a task delivered twice) is
    returned as it is. A failure is recorded on the row (keeping the last checkpoint), then
    re-raised; a cancel request or Ctrl-C ends it cancelled with a checkpoint to resume from.
    The registry hears of a success (`job_succeeded`) from this process, after the training
    processes have exited."""
    finished: list[bool] = []

    def work(context: JobContext) -> None:
        train(context, progress=progress)
        finished.append(True)

    job = job_run(TrainingJob, job_id, work)
    if finished and job.status == TrainingJob.Status.SUCCEEDED:
        job_succeeded.send(sender=TrainingJob, job=job)
    return job


def _payload(job: TrainingJob) -> dict[str, Any]:
    """Everything the training processes need, so that they never read the database."""
    resume = job.checkpoint if job.checkpoint and Path(job.checkpoint).exists() else ""
    parent = job.parent_job.adapter_path if job.parent_job and job.parent_job.adapter_path else ""
    return {
        "job": job.pk, "backend": job.backend, "method": job.method, "base_model": job.base_model, "recipe": job.recipe,
        "recipe_notes": job.recipe_notes, "train_rows": _rows(job, DatasetItem.Split.TRAIN),
        "eval_rows": _rows(job, DatasetItem.Split.EVAL), "output_dir": job.output_dir, "resume_from": resume,
        "parent_adapter": parent, "meta": _meta(job, {}),
    }  # fmt: skip


def train(context: JobContext, *, progress: Progress | None = None) -> None:
    """The work of a training job (the lifecycle is the runner's): run the training processes,
    which checkpoint and write the adapter and its metadata; what the row should show is staged
    on `context`."""
    job: TrainingJob = context.job  # type: ignore[assignment]
    context.stage(library_versions=library_versions())  # the same environment as the training processes'
    payload = _payload(job)
    if not payload["train_rows"]:
        raise BackendError("The dataset's train split is empty.")
    launch = Launch(output_dir=Path(job.output_dir), attempt=context.attempt, payload=payload)
    reporter = _Reporter(context, launch, progress)
    try:
        with _ctrl_c_stops(launch):
            ending = launch.run(reporter)
    except Exception:
        context.stage(checkpoint=str(last_checkpoint(Path(job.output_dir)) or job.checkpoint or ""))
        raise
    checkpoint = ending.fields.pop("checkpoint", "") or str(last_checkpoint(Path(job.output_dir)) or job.checkpoint or "")
    context.stage(checkpoint=checkpoint)
    if ending.end == "succeeded":
        context.stage(**ending.fields)
    elif ending.end == "stopped":
        raise JobCancelled(f"stopped at step {job.step}: {launch.stop_reason or 'stopped'}")
    else:
        raise TrainingFailed(ending.error)
