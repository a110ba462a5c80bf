"""Training data: examples built from interactions, frozen datasets, curation runs, gaps."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from interactions.models import Interaction
from learning_platform.jobs import Job

TIERS = ("gold", "silver", "bronze", "reject")


class FrozenDatasetError(Exception):
    """A frozen dataset, or one of its items, was about to change."""


class CurationConfig(models.Model):
    """Per-task knobs of curation; a task without a row uses the defaults shown here."""

    task = models.SlugField(max_length=64, unique=True)
    min_score = models.PositiveSmallIntegerField(default=4, help_text="Lowest user score (1-5) that makes an SFT example.")
    gold_threshold = models.FloatField(default=0.90)
    silver_threshold = models.FloatField(default=0.75)
    bronze_threshold = models.FloatField(default=0.60)
    weights = models.JSONField(default=dict, blank=True, help_text='Overrides of the scoring weights, e.g. {"confidence": 0.2}.')
    near_duplicate_threshold = models.FloatField(default=0.85, help_text="Jaccard similarity from which two examples are near duplicates.")
    requires_reasoning = models.BooleanField(default=False, help_text="Score the presence of reasoning.")
    gap_confidence_threshold = models.FloatField(default=0.4, help_text="Interactions below this confidence feed knowledge gaps.")
    hold_out_conflicts = models.BooleanField(
        default=True,
        help_text="Of two contradicting answers to near-identical prompts, keep only the better one in datasets until a "
        "reviewer resolves the conflict (off: both stay in; for tasks with many good answers to one prompt).",
    )

    def __str__(self) -> str:
        return f"curation config of {self.task}"

    def tiers(self) -> dict[str, float]:
        return {"gold": self.gold_threshold, "silver": self.silver_threshold, "bronze": self.bronze_threshold}


class TrainingExample(models.Model):
    class Kind(models.TextChoices):
        SFT = "sft"
        PREFERENCE = "preference"
        BINARY = "binary"

    class Review(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    key = models.CharField(max_length=120, help_text="interaction:kind:origin; a re-run updates the same row.")
    task = models.SlugField(max_length=64, db_index=False)
    category = models.CharField(max_length=64, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    origin = models.CharField(max_length=32, help_text="The signal that made it: output, correction, choice, rating.")
    source_interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="training_examples")
    prompt = models.JSONField(help_text="Scrubbed chat messages.")
    target = models.TextField(help_text="Scrubbed: the answer to learn (the chosen one for pairs, the completion for binary).")
    rejected = models.TextField(blank=True, help_text="Scrubbed: the rejected answer of a preference pair.")
    label = models.BooleanField(null=True, blank=True, help_text="Binary examples: desirable or not.")
    signals = models.JSONField(default=dict, help_text="The score's breakdown.")
    quality_score = models.FloatField()
    tier = models.CharField(max_length=8, choices=[(t, t) for t in TIERS])
    content_hash = models.CharField(max_length=64)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="duplicates")
    pii_found = models.JSONField(default=dict, blank=True, help_text="Placeholders put in, per kind.")
    token_count = models.PositiveIntegerField(default=0, help_text="Estimated: characters / 4.")
    review_status = models.CharField(max_length=10, choices=Review.choices, default=Review.PENDING)
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # Few indexes on purpose: a curation run writes up to millions of rows.
        constraints = [models.UniqueConstraint(fields=["key"], name="example_key_unique")]
        indexes = [models.Index(fields=["task", "kind", "tier"], name="example_task_kind_tier")]

    def __str__(self) -> str:
        return f"{self.kind} example {self.pk} ({self.tier})"


class DuplicateConflict(models.Model):
    """Two examples of a task whose prompts are near-identical and whose answers contradict each
    other (found by a curation run's deduplication, curation/dedup.py). Keys and figures only,
    never text: erasing either example deletes the row."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"

    class Keep(models.TextChoices):
        A = "a"
        B = "b"
        BOTH = "both"
        NEITHER = "neither"

    class Reason(models.TextChoices):
        SAME_PROMPT = "same_prompt", "same prompt, different answers"
        UNEXPLAINED = "unexplained_difference", "the answers differ where the prompts do not"

    task = models.SlugField(max_length=64)
    kind = models.CharField(max_length=16, choices=TrainingExample.Kind.choices)
    example_a = models.ForeignKey(
        TrainingExample, on_delete=models.CASCADE, related_name="conflicts_as_a",
        help_text="The better of the two (quality, then key): stays in datasets while the conflict is open.",
    )  # fmt: skip
    example_b = models.ForeignKey(
        TrainingExample, on_delete=models.CASCADE, related_name="conflicts_as_b",
        help_text="Held out of datasets while the conflict is open (unless the task's config keeps both).",
    )  # fmt: skip
    reason = models.CharField(max_length=32, choices=Reason.choices)
    similarity = models.FloatField(help_text="Jaccard similarity of the two prompts (character 5-grams).")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    kept = models.CharField(max_length=8, choices=Keep.choices, blank=True, help_text="What the reviewer kept.")
    resolved_by = models.CharField(max_length=150, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["task", "id"]
        constraints = [models.UniqueConstraint(fields=["example_a", "example_b"], name="duplicate_conflict_pair_unique")]
        indexes = [models.Index(fields=["task", "status"], name="conflict_task_status")]

    def __str__(self) -> str:
        return f"conflict {self.pk} in {self.task}: example {self.example_a_id} vs {self.example_b_id} ({self.status})"


class FrozenGuardQuerySet(models.QuerySet["DatasetItem"]):
    def update(self, **kwargs: Any) -> int:
        if self.filter(dataset__status=Dataset.Status.FROZEN).exists():
            raise FrozenDatasetError("Items of a frozen dataset cannot change.")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        if self.filter(dataset__status=Dataset.Status.FROZEN).exists():
            raise FrozenDatasetError("Items of a frozen dataset cannot be deleted (erasure uses erase_items).")
        return super().delete()

    def erase_items(self) -> int:
        """Delete items for a GDPR erasure: the one change a frozen dataset accepts (it is tainted)."""
        return self._raw_delete(self.db)


class Dataset(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        FROZEN = "frozen"

    task = models.SlugField(max_length=64)
    name = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=TrainingExample.Kind.choices)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    filters = models.JSONField(default=dict, help_text="What was selected: min tier, categories, max size, balance, seed, eval ratio.")
    manifest_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 over the items' content and splits.")
    stats = models.JSONField(default=dict, blank=True)
    tainted = models.BooleanField(default=False)
    tainted_reason = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="derived",
        help_text="The dataset this version was derived from (a retraining after an erasure: its remaining items).",
    )  # fmt: skip
    created_by = models.CharField(max_length=150, blank=True)
    frozen_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    frozen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["task", "-version"]
        constraints = [models.UniqueConstraint(fields=["task", "name", "version"], name="dataset_version_unique")]

    def __str__(self) -> str:
        return f"{self.task}/{self.name} v{self.version}" + (" (tainted)" if self.tainted else "")

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk and not self._state.adding:
            stored = Dataset.objects.filter(pk=self.pk).values("status").first()
            if (
                stored
                and stored["status"] == Dataset.Status.FROZEN
                and set(kwargs.get("update_fields") or ["*"]) - {"tainted", "tainted_reason"}
            ):
                raise FrozenDatasetError(f"Dataset {self} is frozen; only its tainted flag can change.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.status == Dataset.Status.FROZEN:
            raise FrozenDatasetError(f"Dataset {self} is frozen and cannot be deleted.")
        return super().delete(*args, **kwargs)


class DatasetItem(models.Model):
    """A snapshot of one example as it was when the dataset froze: later edits of the example
    (a re-score, a review) never reach a frozen dataset."""

    class Split(models.TextChoices):
        TRAIN = "train"
        EVAL = "eval"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="items")
    example = models.ForeignKey(TrainingExample, null=True, on_delete=models.SET_NULL, related_name="dataset_items")
    source_interaction_id = models.UUIDField(db_index=True)
    split = models.CharField(max_length=5, choices=Split.choices)
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=TrainingExample.Kind.choices)
    category = models.CharField(max_length=64, blank=True)
    prompt = models.JSONField()
    target = models.TextField()
    rejected = models.TextField(blank=True)
    label = models.BooleanField(null=True)
    quality_score = models.FloatField()
    tier = models.CharField(max_length=8)
    content_hash = models.CharField(max_length=64)
    token_count = models.PositiveIntegerField(default=0)

    objects = FrozenGuardQuerySet.as_manager()

    class Meta:
        ordering = ["dataset", "split", "position"]
        constraints = [models.UniqueConstraint(fields=["dataset", "split", "position"], name="dataset_item_position_unique")]

    def __str__(self) -> str:
        return f"item {self.position} of {self.dataset_id} ({self.split})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if Dataset.objects.filter(pk=self.dataset_id, status=Dataset.Status.FROZEN).exists():
            raise FrozenDatasetError("Items of a frozen dataset cannot change.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if Dataset.objects.filter(pk=self.dataset_id, status=Dataset.Status.FROZEN).exists():
            raise FrozenDatasetError("Items of a frozen dataset cannot be deleted.")
        return super().delete(*args, **kwargs)


class CurationRun(Job):
    """A curation run (learning_platform.jobs: re-queued by the reaper when its worker dies)."""

    job_kind = "curation_run"
    job_task = "curation.tasks.execute_run"
    job_rerunnable = True  # a run rebuilds the examples of what it reads: starting over is safe

    task = models.SlugField(max_length=64, blank=True, help_text="Empty: every task.")
    since = models.DateTimeField(null=True, blank=True, help_text="Reconsider everything changed after this; empty: since the last run.")
    counts = models.JSONField(default=dict, blank=True, help_text="Rows in and out of each stage.")
    stage_seconds = models.JSONField(default=dict, blank=True, help_text="Wall time of each stage.")
    watermark = models.DateTimeField(null=True, blank=True, help_text="Everything up to here was considered.")
    requested_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"curation run {self.pk} ({self.status})"


class DatasetExport(models.Model):
    """A file the platform wrote (`export_dataset --out`): erasing a subject whose rows the
    dataset held deletes the file, or lists it in the erasure record when it cannot."""

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="exports")
    path = models.CharField(max_length=1000, help_text="Absolute path as written.")
    format = models.CharField(max_length=32)
    split = models.CharField(max_length=8)
    rows = models.PositiveIntegerField(default=0)
    created_by = models.CharField(max_length=150, blank=True, help_text="command:<os user>")
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True, help_text="When an erasure deleted the file.")
    deletion_error = models.TextField(blank=True, help_text="Why the file could not be deleted.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"export of {self.dataset_id} to {self.path}"


class KnowledgeGap(models.Model):
    """A cluster of questions the model answered with low confidence (rebuilt by each run)."""

    task = models.SlugField(max_length=64)
    representative = models.TextField()
    size = models.PositiveIntegerField()
    examples = models.JSONField(default=list, help_text="A few scrubbed queries of the cluster.")
    interaction_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-size"]

    def __str__(self) -> str:
        return f"{self.task}: {self.representative[:60]} ({self.size})"


class ImportRun(Job):
    """An import of existing data (curation/importers): a JSONL file or a git repository's history,
    each record stored as an interaction with the feedback it implies (learning_platform.jobs)."""

    class Origin(models.TextChoices):
        FILE = "file"
        GIT = "git"

    job_kind = "import_run"
    job_task = "curation.tasks.execute_import"
    job_rerunnable = True  # every record carries its content hash as idempotency key: starting over adds nothing

    origin = models.CharField(max_length=8, choices=Origin.choices, default=Origin.FILE, help_text="A file or a git repository.")
    task = models.SlugField(max_length=64)
    client = models.ForeignKey(
        "interactions.ApiClient", on_delete=models.PROTECT, related_name="import_runs",
        help_text="The client the interactions are stored under.",
    )  # fmt: skip
    format = models.CharField(max_length=20, default="auto", help_text="auto, or the format every record is read as.")
    source = models.CharField(max_length=8, default="staff", help_text="Who the implied feedback comes from: staff or user.")
    dry_run = models.BooleanField(default=False, help_text="Report what would be stored; store nothing.")
    path = models.CharField(max_length=1000, help_text="The file read (an upload: a copy deleted when the run ends), or the repository.")
    file_name = models.CharField(max_length=255, blank=True, help_text="The name the file was uploaded under.")
    options = models.JSONField(default=dict, blank=True, help_text="git: branch, since, max_commits and the size limits.")
    counts = models.JSONField(default=dict, blank=True, help_text="Records read, created, replayed, refused, per format.")
    refused = models.JSONField(default=list, blank=True, help_text="[{line, reason}] of the first IMPORT_REPORT_LINES refused.")
    requested_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.origin} import {self.pk} into {self.task} ({self.status})"


class GitImportCursor(models.Model):
    """The newest commit imported from a repository's branch into a task: the next run starts there."""

    repository = models.CharField(max_length=64, help_text="The repository's root commit: the same in every clone.")
    branch = models.CharField(max_length=255)
    task = models.SlugField(max_length=64)
    last_commit = models.CharField(max_length=64)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "branch", "task"], name="git_cursor_unique")]

    def __str__(self) -> str:
        return f"{self.repository[:10]}:{self.branch} -> {self.task} at {self.last_commit[:10]}"


from .lessons.models import Lesson, LessonSettings, Memory, Persona, PersonaChange  # noqa: E402, F401  (registers them)
