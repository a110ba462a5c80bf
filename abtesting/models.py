"""Offline evaluation: suites of cases, runs of a version over a suite, arena verdicts."""

from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models

from interactions.models import Interaction
from learning_platform.jobs import Job
from registry.models import ModelVersion

CATEGORIES = ("arithmetic", "coding", "explanation", "reasoning", "translation", "factual", "listing", "summarization")


class EvaluationSettings(models.Model):
    """Per task: how answers are scored (suites, the arena, trial verdicts), the token budget of
    an evaluated answer, and how many recent corrected interactions an experiment replays.
    A task without a row gets the defaults (abtesting/verdicts.py)."""

    class Scorer(models.TextChoices):
        AUTO = "auto", "auto: JSON field by field when the expected answer is JSON, else the suite's weights"
        JSON_FIELDS = "json_fields", "JSON field by field"
        EXACT = "exact_match", "exact match"
        NORMALIZED = "normalized_match", "normalized match (case, spaces, punctuation ignored)"
        REFERENCE = "reference_similarity", "reference similarity (chrF)"
        SUITE = "suite_weights", "the suite's weighted scorers"

    task = models.SlugField(max_length=64, unique=True)
    scorer = models.CharField(max_length=24, choices=Scorer.choices, default=Scorer.AUTO)
    number_tolerance = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0)],
        help_text="JSON fields: a number matches when |answer - expected| <= this x max(1, |expected|). 0: equal values.",
    )  # fmt: skip
    max_tokens = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)],
        help_text="Token budget of an evaluated answer; empty: what a request naming none gets (64). Never below the "
                  "expected answer's length; at most SERVING_MAX_TOKENS.",
    )  # fmt: skip
    replay_limit = models.PositiveIntegerField(
        default=200, help_text="Replay trials per experiment on recent corrected interactions (0: live trials only)."
    )
    replay_days = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1)], help_text="How far back an experiment replays interactions."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "evaluation settings"

    def __str__(self) -> str:
        return f"evaluation settings of {self.task}"


class EvalSuite(models.Model):
    task = models.SlugField(max_length=64, db_index=False)
    name = models.CharField(max_length=100)
    weights = models.JSONField(default=dict, help_text='Scorers and their weights, e.g. {"normalized_match": 2, "keyword_coverage": 1}.')
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["task", "name"], name="suite_unique")]

    def __str__(self) -> str:
        return f"{self.task}/{self.name}"


class EvalCase(models.Model):
    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="cases")
    category = models.CharField(max_length=32)
    messages = models.JSONField(help_text="The input as chat messages.")
    expected = models.TextField(blank=True)
    keywords = models.JSONField(default=list, blank=True)
    expects_json = models.BooleanField(default=False)
    weight = models.FloatField(default=1.0)
    source_interaction = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.CASCADE, related_name="+",
        help_text="Set when the case came from a dataset: erasing the interaction's subject deletes the case.",
    )  # fmt: skip

    class Meta:
        ordering = ["suite", "category", "id"]

    def __str__(self) -> str:
        return f"{self.category}: {self.messages[-1]['content'][:50] if self.messages else ''}"


class EvalRun(Job):
    """A version answering a suite (learning_platform.jobs). A run whose process died is failed:
    whoever asked for it (the arena, `manage.py evaluate`) is gone too."""

    job_kind = "eval_run"

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="eval_runs")
    suite = models.ForeignKey(EvalSuite, on_delete=models.PROTECT, related_name="runs")
    results = models.JSONField(default=list, blank=True, help_text="Per case: id, category, output, score, parts, latency_ms.")
    by_category = models.JSONField(default=dict, blank=True, help_text="Mean score and latency per category.")
    score = models.FloatField(null=True, blank=True)
    mean_latency_ms = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.version.name} on {self.suite} ({self.status})"


class Experiment(models.Model):
    """A challenger against the task's champion (the control) on live traffic."""

    class Mode(models.TextChoices):
        SHADOW = "shadow", "shadow (both answer, users see the control)"
        CANARY = "canary", "canary (a sticky share of subjects sees the challenger)"

    class Status(models.TextChoices):
        RUNNING = "running"
        AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
        COMPLETED = "completed"
        STOPPED = "stopped"

    class Recommendation(models.TextChoices):
        PROMOTE = "promote_challenger"
        KEEP = "keep_control"
        MORE = "need_more_data"

    task = models.SlugField(max_length=64, db_index=False)
    control = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    challenger = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="experiments")
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.SHADOW)
    sample_rate = models.FloatField(help_text="Shadow: the share of the control's requests also answered by the challenger. "
                                              "Canary: the share of subjects who see the challenger.")  # fmt: skip
    min_trials = models.PositiveIntegerField(help_text="Stopping rule: no promotion before this many trials.")
    max_trials = models.PositiveIntegerField(help_text="Stopping rule: keep the control when still undecided after this many.")
    max_days = models.PositiveIntegerField(help_text="Stopping rule: keep the control when still undecided after this many days.")
    min_win_rate = models.FloatField(help_text="The challenger's win rate (ties excluded) needed to promote it.")
    alpha = models.FloatField(help_text="Significance level of the sequential test.")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    recommendation = models.CharField(max_length=20, choices=Recommendation.choices, default=Recommendation.MORE)
    reason = models.TextField(blank=True, help_text="The numbers behind the recommendation or the decision.")
    stats = models.JSONField(default=dict, blank=True, help_text="Trials, win rate with its interval, p-value, sample ratio, guardrails.")
    decision = models.CharField(max_length=20, choices=Recommendation.choices, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)
    arena = models.JSONField(default=dict, blank=True, help_text="The offline arena verdict that admitted the challenger.")
    started_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["task"], condition=models.Q(status__in=["running", "awaiting_approval"]), name="experiment_one_open_per_task"
            ),
            models.CheckConstraint(condition=models.Q(sample_rate__gt=0, sample_rate__lte=1), name="experiment_sample_rate_in_0_1"),
        ]

    def __str__(self) -> str:
        return f"{self.task}: {self.challenger.name} vs {self.control.name} ({self.mode}, {self.status})"


class Trial(models.Model):
    """One sampled interaction: both answers, their latencies and the verdict (A control, B challenger)."""

    class Verdict(models.TextChoices):
        A = "A", "A (control)"
        B = "B", "B (challenger)"
        TIE = "tie"

    class Source(models.TextChoices):
        GROUND_TRUTH = "ground_truth", "ground truth"
        FEEDBACK = "feedback", "user feedback"
        JUDGE = "judge", "judge model"
        HEURISTIC = "heuristic", "heuristic scorers"

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="trials")
    interaction = models.ForeignKey(Interaction, on_delete=models.CASCADE, related_name="+")
    shown = models.CharField(max_length=1, blank=True, help_text="A or B: whose answer the user saw (empty for a replay).")
    replayed = models.BooleanField(default=False, help_text="A replay: both versions answered a logged prompt afterwards.")
    output_a = models.TextField(blank=True)
    output_b = models.TextField(blank=True)
    latency_a_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_b_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, help_text="Set when the background answer failed (counted as a loss for that side).")
    verdict = models.CharField(max_length=3, choices=Verdict.choices)
    source = models.CharField(max_length=12, choices=Source.choices)
    detail = models.JSONField(default=dict, blank=True, help_text="Scores or the judge's answer behind the verdict.")
    ground_truth = models.TextField(blank=True, help_text="The correction (or accepted answer) both answers were scored against.")
    score_a = models.FloatField(null=True, blank=True, help_text="The control's score against the ground truth.")
    score_b = models.FloatField(null=True, blank=True, help_text="The challenger's score against the ground truth.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["experiment", "interaction"], name="trial_once_per_interaction")]

    def __str__(self) -> str:
        return f"trial {self.pk}: {self.verdict} ({self.source})"


class EvalReport(models.Model):
    """The monthly report of a task: its champion and earlier versions on every suite."""

    task = models.SlugField(max_length=64)
    versions = models.JSONField(default=list, help_text="Per version, oldest first: name, status, per suite score and per category.")
    trend = models.JSONField(default=list, help_text="Per suite: the score of each version in order.")
    regressions = models.JSONField(default=list, help_text="Categories where the champion scores below the version before it.")
    summary = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"report of {self.task} at {self.created_at:%Y-%m-%d}"
