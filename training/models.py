"""Training policies per task and training jobs (long work tracked on a row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db import models

from curation.models import Dataset
from learning_platform.jobs import Job


class TrainingPolicy(models.Model):
    """When a task is ready to train (the weekly schedule trains every ready task)."""

    task = models.SlugField(max_length=64, unique=True)
    enabled = models.BooleanField(default=True)
    auto_train = models.BooleanField(default=True, help_text="Let the weekly schedule train this task when it is ready.")
    min_examples = models.PositiveIntegerField(default=100)
    min_gold_examples = models.PositiveIntegerField(default=0)
    min_average_quality = models.FloatField(default=0.0)
    min_hours_between_jobs = models.PositiveIntegerField(default=24)
    method = models.CharField(max_length=8, blank=True, help_text="sft, dpo or kto; empty: from the data (SFT first).")
    min_tier = models.CharField(max_length=8, default="silver")

    class Meta:
        verbose_name_plural = "training policies"

    def __str__(self) -> str:
        return f"training policy of {self.task}"


class TrainingJob(Job):
    """A training job (learning_platform.jobs). A job whose worker died is failed, keeping its last
    checkpoint: resuming it is an operator's decision (it may need another machine)."""

    job_kind = "training_job"
    job_task = "training.tasks.execute_job"

    task = models.SlugField(max_length=64, db_index=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="training_jobs")
    base_model = models.CharField(max_length=300, help_text="Hub id or local path, as resolved when the job was made.")
    method = models.CharField(max_length=8)
    backend = models.CharField(max_length=10, default="auto")
    recipe = models.JSONField(default=dict, help_text="The full recipe used, after defaults were chosen.")
    recipe_notes = models.JSONField(default=dict, blank=True, help_text="Why each open choice was made.")
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    loss_curve = models.JSONField(default=list, blank=True, help_text="[{step, epoch, loss, learning_rate, ...}] per logging step.")
    eval_loss = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    checkpoint = models.CharField(max_length=500, blank=True, help_text="The last checkpoint, where a resume continues.")
    output_dir = models.CharField(max_length=500, blank=True)
    adapter_path = models.CharField(max_length=500, blank=True)
    parent_job = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                                   help_text="The job whose adapter this one continued from.")  # fmt: skip
    requested_by = models.CharField(max_length=150, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["task", "-created_at"], name="job_task_created"),
            models.Index(fields=["status"], name="job_status"),
        ]

    def __str__(self) -> str:
        return f"{self.method} job {self.pk} on {self.task} ({self.status})"

    @property
    def resumable(self) -> bool:
        return self.status in (self.Status.FAILED, self.Status.CANCELLED) and bool(self.checkpoint)

    def stale_fields(self) -> dict[str, Any]:
        from .backends.trl_backend import last_checkpoint

        checkpoint = last_checkpoint(Path(self.output_dir)) if self.output_dir else None
        self.checkpoint = str(checkpoint) if checkpoint else self.checkpoint
        return {"checkpoint": self.checkpoint}

    def stale_advice(self) -> str:
        return "Resume it to continue from its last checkpoint." if self.checkpoint else "It left no checkpoint."


class TrainableDataset(Dataset):
    """Frozen datasets as the training admin lists them (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "dataset to train on"
