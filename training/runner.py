"""Run one training job: the same code for `manage.py train`, the django-q2 task and the admin.

Progress, the loss curve and a heartbeat are written to the job row while it trains; a cancel
request (or Ctrl-C in the command) stops it at the next step with a checkpoint to resume from.
"""

from __future__ import annotations

import json
import logging
import platform
import time
import traceback
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from django.utils import timezone

from curation import exporters, selectors
from curation.models import DatasetItem

from .backends import BackendError, Hooks, TrainSpec, select
from .backends.trl_backend import last_checkpoint
from .models import TrainingJob
from .recipes import Recipe
from .signals import job_succeeded

logger = logging.getLogger(__name__)
HEARTBEAT_EVERY = 2.0  # seconds between writes of progress to the row
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
    """Writes progress to the job row at most every HEARTBEAT_EVERY seconds (and at each logged
    loss) and answers whether to stop (a cancel request in the row, or Ctrl-C in this process)."""

    def __init__(self, job: TrainingJob, progress: Progress | None) -> None:
        self.job, self.progress = job, progress
        self.curve: list[dict[str, Any]] = list(job.loss_curve)
        self.started, self.last_write = time.monotonic(), 0.0
        self.start_step = job.step
        self.interrupted = False
        self.cancel = False

    def on_log(self, record: dict[str, Any]) -> None:
        clean = {k: round(v, 6) if isinstance(v, float) else v for k, v in record.items() if isinstance(v, int | float)}
        self.curve.append(clean)
        line = " ".join(f"{k}={v}" for k, v in clean.items())
        self.job.log_tail = (self.job.log_tail + f"{timezone.now():%H:%M:%S} {line}\n")[-4000:]
        self.write(force=True)

    def on_step(self, step: int, total: int) -> None:
        self.job.step, self.job.total_steps = step, total
        done = max(1, step - self.start_step)
        self.job.eta_seconds = round((time.monotonic() - self.started) / done * (total - step), 1)
        if self.progress:
            self.progress(step, total, self.curve[-1] if self.curve else {})
        self.write()

    def write(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < HEARTBEAT_EVERY:
            return
        self.last_write = now
        evals = [r["eval_loss"] for r in self.curve if "eval_loss" in r]
        TrainingJob.objects.filter(pk=self.job.pk).update(
            step=self.job.step, total_steps=self.job.total_steps, eta_seconds=self.job.eta_seconds, loss_curve=self.curve,
            eval_loss=evals[-1] if evals else None, heartbeat_at=timezone.now(), log_tail=self.job.log_tail,
        )  # fmt: skip

    def should_stop(self) -> bool:
        """Asked after every step: one indexed look-up, so a cancel stops at the next step."""
        if not self.interrupted and not self.cancel:
            self.cancel = TrainingJob.objects.filter(pk=self.job.pk, cancel_requested=True).exists()
        return self.cancel or self.interrupted


def _recipe(values: dict[str, Any]) -> Recipe:
    modules = values.get("target_modules")
    return Recipe(**{**values, "target_modules": tuple(modules) if modules else None})


def _finish(job: TrainingJob, **fields: Any) -> TrainingJob:
    fields.setdefault("finished_at", timezone.now())
    fields["heartbeat_at"] = timezone.now()
    TrainingJob.objects.filter(pk=job.pk).update(**fields)
    job.refresh_from_db()
    return job


def _meta(job: TrainingJob, metrics: dict[str, float]) -> dict[str, Any]:
    return {
        "job": job.pk, "task": job.task, "method": job.method, "base_model": job.base_model,
        "dataset": {"id": job.dataset_id, "manifest_hash": job.dataset.manifest_hash, "version": job.dataset.version},
        "parent_job": job.parent_job_id, "recipe": job.recipe, "seed": job.seed, "versions": job.library_versions, "metrics": metrics,
    }  # fmt: skip


def job_execute(*, job_id: int, progress: Progress | None = None, reporter_hook: Callable[[_Reporter], None] | None = None) -> TrainingJob:
    """Run a queued job (or one a dead worker left running) to its end. A finished job is
    returned as it is, so a task delivered twice does no harm."""
    job = TrainingJob.objects.select_related("dataset", "parent_job").get(pk=job_id)
    if job.status not in (TrainingJob.Status.QUEUED, TrainingJob.Status.RUNNING):
        return job
    job = _finish(
        job, status=TrainingJob.Status.RUNNING, started_at=job.started_at or timezone.now(), finished_at=None,
        attempts=job.attempts + 1, library_versions=library_versions(), error="",
    )  # fmt: skip
    reporter = _Reporter(job, progress)
    if reporter_hook:
        reporter_hook(reporter)
    try:
        backend = select(job.backend, load_in_4bit=bool(job.recipe.get("load_in_4bit")))
        output_dir = Path(job.output_dir)
        resume = Path(job.checkpoint) if job.checkpoint and Path(job.checkpoint).exists() else None
        parent = Path(job.parent_job.adapter_path) if job.parent_job and job.parent_job.adapter_path else None
        hooks = Hooks(on_log=reporter.on_log, on_step=reporter.on_step, should_stop=reporter.should_stop)
        spec = TrainSpec(
            method=job.method, base_model=job.base_model, recipe=_recipe(job.recipe), train_rows=_rows(job, DatasetItem.Split.TRAIN),
            eval_rows=_rows(job, DatasetItem.Split.EVAL), output_dir=output_dir, resume_from=resume, parent_adapter=parent, hooks=hooks,
        )  # fmt: skip
        if not spec.train_rows:
            raise BackendError("The dataset's train split is empty.")
        result = backend.train(spec)
    except BackendError as exc:
        logger.warning("training job %s refused: %s", job.pk, exc)
        return _finish(job, status=TrainingJob.Status.FAILED, error=str(exc))
    except Exception:
        logger.exception("training job %s failed", job.pk)
        checkpoint = last_checkpoint(Path(job.output_dir))
        return _finish(
            job,
            status=TrainingJob.Status.FAILED,
            error=traceback.format_exc()[-10_000:],
            checkpoint=str(checkpoint or job.checkpoint or ""),
        )
    reporter.write(force=True)
    if result.stopped_early:
        why = "interrupted" if reporter.interrupted else "cancel requested"
        return _finish(
            job,
            status=TrainingJob.Status.CANCELLED,
            checkpoint=str(result.last_checkpoint or ""),
            log_tail=(job.log_tail + f"stopped at step {job.step}: {why}\n")[-4000:],
        )
    meta = _meta(job, result.metrics)
    (result.adapter_dir / "training_meta.json").write_text(json.dumps(meta, indent=2))
    job = _finish(
        job, status=TrainingJob.Status.SUCCEEDED, adapter_path=str(result.adapter_dir), metrics=result.metrics,
        eval_loss=result.metrics.get("eval_loss"), checkpoint=str(result.last_checkpoint or ""), step=job.step,
    )  # fmt: skip
    job_succeeded.send(sender=TrainingJob, job=job)
    return job
