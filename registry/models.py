"""Model versions with their lineage, the champion of each task, and the audit of every change."""

from __future__ import annotations

from django.db import models

from curation.models import Dataset
from interactions.models import ErasureRequest
from learning_platform.jobs import Job
from training.models import TrainingJob


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        APPROVED = "approved"
        ACTIVE = "active"
        RETIRED = "retired"
        REJECTED = "rejected"
        ROLLED_BACK = "rolled_back"

    task = models.SlugField(max_length=64, db_index=False)
    name = models.CharField(max_length=200, unique=True, help_text="{base}-{task}-v{n}")
    number = models.PositiveIntegerField(help_text="n: counted per task and base model; 0 is the plain base.")
    base_model = models.CharField(max_length=300)
    adapter_path = models.CharField(max_length=500, blank=True, help_text="Empty for the plain base model.")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    training_job = models.OneToOneField(TrainingJob, null=True, blank=True, on_delete=models.PROTECT, related_name="model_version")
    dataset = models.ForeignKey(Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="model_versions")
    metrics = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CANDIDATE)
    tainted = models.BooleanField(default=False)
    tainted_reason = models.TextField(blank=True)
    retrained_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="retrained_as",
        help_text="The tainted version this one retrains on its dataset minus the erased rows.",
    )  # fmt: skip
    approved_by = models.CharField(max_length=150, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["task", "-number"]
        constraints = [models.UniqueConstraint(fields=["task", "base_model", "number"], name="version_number_unique")]
        indexes = [models.Index(fields=["task", "status"], name="version_task_status")]

    def __str__(self) -> str:
        return self.name + (" (tainted)" if self.tainted else "")


class ActiveModel(models.Model):
    """The champion of a task: one row per task (a unique constraint makes two impossible)."""

    task = models.SlugField(max_length=64, unique=True)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    revision = models.PositiveBigIntegerField(default=0, help_text="Bumped on every change; serving processes compare it per request.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.task}: {self.version.name}"


class LifecycleEvent(models.Model):
    class Action(models.TextChoices):
        REGISTER = "register"
        APPROVE = "approve"
        REJECT = "reject"
        PROMOTE = "promote"
        ROLLBACK = "rollback"
        RETIRE = "retire"
        TAINT = "taint"
        AB_TEST_STARTED = "ab_test.started"
        AB_TEST_COMPLETED = "ab_test.completed"
        READY_FOR_PROMOTION = "fine_tuning.ready_for_promotion"

    task = models.SlugField(max_length=64, db_index=False)
    action = models.CharField(max_length=40, choices=Action.choices)
    actor = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    from_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["task", "-created_at"], name="event_task_created")]

    def __str__(self) -> str:
        return f"{self.action} {self.to_version or self.from_version} by {self.actor}"


class ServingRoute(models.Model):
    """A version a task may route to, with what it is good at and how much to prefer it."""

    task = models.SlugField(max_length=64, db_index=False)
    version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="routes")
    capabilities = models.JSONField(default=list, blank=True, help_text='What it is good at, e.g. ["code", "translation"].')
    priority = models.PositiveSmallIntegerField(default=1, help_text="1 (low) to 4 (high).")
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "version"], name="route_unique"),
            models.CheckConstraint(condition=models.Q(priority__gte=1, priority__lte=4), name="route_priority_1_to_4"),
        ]

    def __str__(self) -> str:
        return f"{self.task} → {self.version.name} (priority {self.priority})"

    def clean(self) -> None:
        """A route names a version of its own task that may serve (not tainted, not rejected)."""
        from django.core.exceptions import ValidationError

        version = self.version if self.version_id else None
        if version is not None and version.task != self.task:
            raise ValidationError({"version": f"{version.name} is a version of {version.task!r}, not of {self.task!r}."})
        if version is not None and (version.tainted or version.status == ModelVersion.Status.REJECTED):
            state = "tainted" if version.tainted else "rejected"
            raise ValidationError({"version": f"{version.name} is {state} and never serves."})


class PromotionPolicy(models.Model):
    """Per task: may a candidate be promoted without an approval? (Off by default.) And what an
    erasure that taints the champion or a running challenger does (roll back and retrain)."""

    class OnTaint(models.TextChoices):
        ROLLBACK_AND_RETRAIN = "rollback_and_retrain", "roll back, and retrain without the erased rows"
        ROLLBACK = "rollback", "roll back only"
        ALERT_ONLY = "alert_only", "alert only (the tainted champion answers 409 until staff act)"

    task = models.SlugField(max_length=64, unique=True)
    auto_promote = models.BooleanField(default=False, help_text="Let candidates become champion without a staff approval.")
    on_taint = models.CharField(
        max_length=24, choices=OnTaint.choices, default=OnTaint.ROLLBACK_AND_RETRAIN,
        help_text="When an erasure taints the champion or a running challenger. A tainted version never serves either way.",
    )  # fmt: skip

    class Meta:
        verbose_name_plural = "promotion policies"

    def __str__(self) -> str:
        return f"promotion policy of {self.task}"


class VersionStats(models.Model):
    """A served version's performance (registry/stats.py), refreshed off the request path by the
    `refresh-version-stats` schedule: the router and GET models/performance read these rows.
    Keyed by the name interactions carry, so versions served elsewhere are counted too."""

    task = models.SlugField(max_length=64, db_index=False)
    version = models.CharField(max_length=200)
    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error_rate = models.FloatField(default=0.0)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    tokens = models.PositiveBigIntegerField(default=0)
    mean_feedback_score = models.FloatField(null=True, blank=True)
    thumbs_up_share = models.FloatField(null=True, blank=True)
    trust = models.FloatField(default=0.0)
    refreshed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "version stats"
        constraints = [models.UniqueConstraint(fields=["task", "version"], name="version_stats_unique")]

    def __str__(self) -> str:
        return f"{self.version} ({self.task}): trust {self.trust}"


class Retraining(Job):
    """A tainted version's recipe trained again on its dataset minus the erased rows
    (registry/erasure.py): the work derives the new frozen dataset and queues the training job;
    the job's version registers with `retrained_from` pointing at the tainted one."""

    job_kind = "retraining"
    job_task = "registry.tasks.run_retraining"
    job_rerunnable = True  # derive + queue run in one transaction: starting over is safe

    version = models.OneToOneField(ModelVersion, on_delete=models.PROTECT, related_name="retraining")
    erasure = models.ForeignKey(ErasureRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="The derived dataset."
    )
    training_job = models.OneToOneField(TrainingJob, null=True, blank=True, on_delete=models.PROTECT, related_name="retraining")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"retraining of {self.version.name} ({self.status})"
