"""What the client application told us: its end users (pseudonymous), their interactions,
feedback and candidates, and the audit of erasures."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

SCOPES = ("ingest", "read", "admin")


class ApiClient(models.Model):
    """A client application. Its API key is stored only as a SHA-256 hash."""

    name = models.CharField(max_length=100, unique=True)
    key_prefix = models.CharField(max_length=16, editable=False, help_text="The key's first characters, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.JSONField(default=list, help_text="Any of ingest, read, admin (admin implies the others).")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    is_authenticated = True  # lets DRF treat an ApiClient as request.user (throttling, permissions)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes


class Subject(models.Model):
    """The pseudonymous end user: HMAC(SUBJECT_HASH_KEY, client id + user id), never the raw id."""

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="subjects")
    user_hash = models.CharField(max_length=64)
    opted_out = models.BooleanField(default=False)
    opted_out_at = models.DateTimeField(null=True, blank=True)
    suppressed_interactions = models.PositiveBigIntegerField(
        default=0, help_text="Interactions received after opting out: counted, content not stored."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "user_hash"], name="subject_unique_per_client")]

    def __str__(self) -> str:
        return f"subject {self.user_hash[:12]}…"


class Interaction(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"
        UNCERTAIN = "uncertain"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="interactions")
    subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.CASCADE, related_name="interactions")
    session_id = models.CharField(max_length=128, blank=True)
    task = models.SlugField(max_length=64, default="default")
    messages = models.JSONField(default=list, help_text="The input as chat messages [{role, content}].")
    input_text = models.TextField(blank=True)
    structured_prompt = models.JSONField(null=True, blank=True)
    output_text = models.TextField(blank=True)
    model_version = models.CharField(max_length=200, blank=True, help_text="The model version name as served.")
    tokens_input = models.PositiveIntegerField(null=True, blank=True)
    tokens_output = models.PositiveIntegerField(null=True, blank=True)
    tokens_total = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    confidence = models.FloatField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, blank=True)
    reasoning = models.TextField(blank=True)
    context_used = models.JSONField(null=True, blank=True)
    target_tool = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=35, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    idempotency_key = models.CharField(max_length=200, blank=True)
    request_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="interaction_idempotency_key_unique_per_client",
            ),
            models.CheckConstraint(
                condition=Q(confidence__isnull=True) | Q(confidence__gte=0, confidence__lte=1),
                name="interaction_confidence_in_unit_interval",
            ),
        ]
        indexes = [
            models.Index(fields=["client", "-created_at"], name="interaction_client_created"),
            models.Index(fields=["client", "task", "-created_at"], name="interaction_client_task"),
            models.Index(fields=["model_version"], name="interaction_model_version"),
            models.Index(fields=["created_at"], name="interaction_created"),
            models.Index(fields=["task"], name="interaction_task"),  # serving asks whether a task exists
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.id}"


class ClientContext(models.Model):
    """IP address and user agent of an interaction. The only place they live; purged daily
    after CLIENT_CONTEXT_RETENTION_DAYS and never copied out of this app."""

    interaction = models.OneToOneField(Interaction, on_delete=models.CASCADE, primary_key=True, related_name="client_context")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"context of {self.interaction_id}"


class Candidate(models.Model):
    """One of several answers shown for an interaction; a `choice` feedback marks one chosen."""

    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="candidates")
    rank = models.PositiveSmallIntegerField()
    text = models.TextField()
    confidence = models.FloatField(null=True, blank=True)
    is_chosen = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["interaction", "rank"]
        constraints = [models.UniqueConstraint(fields=["interaction", "rank"], name="candidate_rank_unique")]

    def __str__(self) -> str:
        return f"candidate {self.rank} of {self.interaction_id}"


class Feedback(models.Model):
    class Kind(models.TextChoices):
        SCORE = "score"
        THUMB = "thumb"
        CORRECTION = "correction"
        CHOICE = "choice"
        FLAG = "flag"

    class Thumb(models.TextChoices):
        UP = "up"
        DOWN = "down"

    class Source(models.TextChoices):
        USER = "user"
        STAFF = "staff"
        AUTO = "auto"

    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="feedback")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    source = models.CharField(max_length=8, choices=Source.choices, default=Source.USER)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    thumb = models.CharField(max_length=4, choices=Thumb.choices, blank=True)
    correction = models.TextField(blank=True)
    candidate = models.ForeignKey(Candidate, null=True, blank=True, on_delete=models.CASCADE, related_name="choices")
    reason = models.TextField(blank=True, help_text="Why it was flagged, or a comment on any kind.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "feedback"
        constraints = [
            models.CheckConstraint(condition=~Q(kind="score") | Q(score__gte=1, score__lte=5), name="feedback_score_between_1_and_5"),
            models.CheckConstraint(condition=~Q(kind="thumb") | Q(thumb__in=["up", "down"]), name="feedback_thumb_set"),
            models.CheckConstraint(condition=~Q(kind="correction") | ~Q(correction=""), name="feedback_correction_set"),
            models.CheckConstraint(condition=~Q(kind="choice") | Q(candidate__isnull=False), name="feedback_choice_set"),
        ]
        indexes = [models.Index(fields=["kind", "created_at"], name="feedback_kind_created")]

    def __str__(self) -> str:
        return f"{self.kind} on {self.interaction_id}"

    @staticmethod
    def rating(kind: str, score: int | None, thumb: str) -> int:
        """A score or thumb on the 1-5 scale (a thumb up counts 5, down 1)."""
        return score if kind == Feedback.Kind.SCORE and score is not None else (5 if thumb == Feedback.Thumb.UP else 1)


class ErasureRequest(models.Model):
    """Audit of one erasure. Holds the subject's keyed hash and counts, never a raw user id."""

    client = models.ForeignKey(ApiClient, on_delete=models.PROTECT, related_name="erasures")
    subject_hash = models.CharField(max_length=64, db_index=True)
    requested_by = models.CharField(max_length=200, help_text="api:<client> or admin:<username>")
    counts = models.JSONField(default=dict, help_text="Rows removed per table, including what later apps derived.")
    pending = models.JSONField(
        default=list, blank=True, help_text="What could not be removed automatically and needs a person (export files)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"erasure of {self.subject_hash[:12]}… at {self.created_at:%Y-%m-%d %H:%M}"
