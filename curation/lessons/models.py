"""Lessons (gold examples made retrievable at serving) and people (persona facets, memories).

Both are derived data: a lesson follows its example (rejected, flagged, opted out, erased: gone
from the index), a persona and memories follow their subject (one client's subject: never shared
across clients). Imported by curation/models.py so Django registers them under `curation`.
"""

from __future__ import annotations

import uuid

from django.db import models

from interactions.models import Interaction, Subject


class LessonSettings(models.Model):
    """Per-task knobs of lessons and memory at serving; a task without a row uses these defaults.
    The two counters let each serving process keep the task's vectors cached: `index_version`
    moves on every change (new vectors are read incrementally), `removal_version` when a lesson
    leaves (the cache is rebuilt); `index_token` tells a row made again (counters restarted,
    lesson ids possibly reused) from the one a process cached."""

    task = models.SlugField(max_length=64, unique=True)
    recall_enabled = models.BooleanField(default=True, help_text="Answer with a lesson's answer above the threshold.")
    recall_threshold = models.FloatField(default=0.9, help_text="Cosine similarity from which a lesson is recalled.")
    few_shot_enabled = models.BooleanField(default=True, help_text="Put the nearest lessons in the prompt.")
    few_shot_k = models.PositiveSmallIntegerField(default=3)
    few_shot_min_similarity = models.FloatField(default=0.5, help_text="Lessons below this similarity are not shown.")
    retire_after_downvotes = models.PositiveSmallIntegerField(
        default=3, help_text="Negative feedbacks (thumb down, score <= 2, correction) on answers that used it."
    )
    memory_enabled = models.BooleanField(default=True, help_text="Persona and memories as a preamble for known users.")
    preamble_max_tokens = models.PositiveSmallIntegerField(default=80, help_text="Estimated as characters / 4.")
    index_token = models.UUIDField(default=uuid.uuid4, editable=False, help_text="Names this row's counters.")
    index_version = models.PositiveBigIntegerField(default=0, editable=False)
    removal_version = models.PositiveBigIntegerField(default=0, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "lesson settings"

    def __str__(self) -> str:
        return f"lesson settings of {self.task}"


class Lesson(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        RETIRED = "retired"

    task = models.SlugField(max_length=64, db_index=False)
    example = models.OneToOneField("curation.TrainingExample", on_delete=models.CASCADE, related_name="lesson")
    source_interaction = models.OneToOneField(Interaction, on_delete=models.CASCADE, related_name="+")
    subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    origin = models.CharField(max_length=16, help_text="correction, choice or approval.")
    prompt_text = models.TextField(help_text="Scrubbed: what the user asked (user turns).")
    answer = models.TextField(help_text="Scrubbed: the right answer.")
    mistake = models.TextField(blank=True, help_text="Scrubbed: the wrong answer a correction replaced.")
    vector = models.BinaryField(help_text="float32 embedding of prompt_text, L2-normalised.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    downvotes = models.PositiveIntegerField(default=0)
    retired_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["task", "status", "id"], name="lesson_task_status_id")]

    def __str__(self) -> str:
        return f"lesson {self.pk} of {self.task} ({self.status})"


class Persona(models.Model):
    """Named facets in [0, 1] of how a subject likes to be answered (0.5: no preference)."""

    subject = models.OneToOneField(Subject, on_delete=models.CASCADE, related_name="+")
    facets = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"persona {self.pk}"


class PersonaChange(models.Model):
    """One move of one facet, with its cause (the feedback that moved it)."""

    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="changes")
    facet = models.CharField(max_length=32)
    before = models.FloatField()
    after = models.FloatField()
    cause = models.CharField(max_length=16, help_text="choice, thumb_up, thumb_down or correction.")
    feedback_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.facet} {self.before:.2f} -> {self.after:.2f} ({self.cause})"


class Memory(models.Model):
    class Kind(models.TextChoices):
        GOAL = "goal"
        PREFERENCE = "preference"
        HISTORY = "history"

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    text = models.CharField(max_length=300, help_text="Scrubbed.")
    feedback_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["subject", "kind"], name="memory_subject_kind")]

    def __str__(self) -> str:
        return f"{self.kind} memory {self.pk}"
