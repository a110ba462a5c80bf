"""Training policies per task and training jobs (long work tracked on a row)."""

from __future__ import annotations

from django.db import models

from curation.models import Dataset
from learning_platform.jobs import JobStatus


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


class TrainingJob(models.Model):
    Status = JobStatus

    task = models.SlugField(max_length=64, db_index=False)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="training_jobs")
    base_model = models.CharField(max_length=300, help_text="Hub id or local path, as resolved when the job was made.")
    method = models.CharField(max_length=8)
    backend = models.CharField(max_length=10, default="auto")
    recipe = models.JSONField(default=dict, help_text="The full recipe used, after defaults were chosen.")
    recipe_notes = models.JSONField(default=dict, blank=True, help_text="Why each open choice was made.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    step = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveIntegerField(default=0)
    eta_seconds = models.FloatField(null=True, blank=True)
    loss_curve = models.JSONField(default=list, blank=True, help_text="[{step, epoch, loss, learning_rate, ...}] per logging step.")
    eval_loss = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    checkpoint = models.CharField(max_length=500, blank=True, help_text="The last checkpoint, where a resume continues.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    output_dir = models.CharField(max_length=500, blank=True)
    adapter_path = models.CharField(max_length=500, blank=True)
    parent_job = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
                                   help_text="The job whose adapter this one continued from.")  # fmt: skip
    requested_by = models.CharField(max_length=150, blank=True)
    library_versions = models.JSONField(default=dict, blank=True)
    seed = models.IntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

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


class TrainableDataset(Dataset):
    """Frozen datasets as the training admin lists them (a proxy: no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = "dataset to train on"
