"""Offline evaluation: suites of cases, runs of a version over a suite, arena verdicts."""

from __future__ import annotations

from django.db import models

from learning_platform.jobs import JobStatus
from registry.models import ModelVersion

CATEGORIES = ("arithmetic", "coding", "explanation", "reasoning", "translation", "factual", "listing", "summarization")


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

    class Meta:
        ordering = ["suite", "category", "id"]

    def __str__(self) -> str:
        return f"{self.category}: {self.messages[-1]['content'][:50] if self.messages else ''}"


class EvalRun(models.Model):
    Status = JobStatus

    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="eval_runs")
    suite = models.ForeignKey(EvalSuite, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    results = models.JSONField(default=list, blank=True, help_text="Per case: id, category, output, score, parts, latency_ms.")
    by_category = models.JSONField(default=dict, blank=True, help_text="Mean score and latency per category.")
    score = models.FloatField(null=True, blank=True)
    mean_latency_ms = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.version.name} on {self.suite} ({self.status})"
