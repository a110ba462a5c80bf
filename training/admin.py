from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from . import services
from .models import TrainableDataset, TrainingJob, TrainingPolicy


def loss_svg(curve: list[dict[str, Any]], width: int = 560, height: int = 200) -> str:
    """The loss curve as an inline SVG polyline (training loss, and eval loss points)."""
    points = [(p["step"], p["loss"]) for p in curve if "loss" in p and "step" in p]
    if len(points) < 2:
        return "(not enough points yet)"
    max_step, low, high = max(s for s, _ in points) or 1, min(v for _, v in points), max(v for _, v in points)
    span = (high - low) or 1.0

    def x(step: float) -> float:
        return 20 + step / max_step * (width - 40)

    def y(value: float) -> float:
        return 10 + (1 - (min(max(value, low), high) - low) / span) * (height - 30)

    line = " ".join(f"{x(s):.1f},{y(v):.1f}" for s, v in points)
    evals = "".join(
        f'<circle cx="{x(p["step"]):.1f}" cy="{y(p["eval_loss"]):.1f}" r="3" fill="#ba2121"/>' for p in curve if "eval_loss" in p
    )
    return mark_safe(  # noqa: S308  (numbers only)
        f'<svg width="{width}" height="{height}" style="background:#fff;border:1px solid #ccc">'
        f'<polyline fill="none" stroke="#417690" stroke-width="2" points="{line}"/>{evals}'
        f'<text x="20" y="{height - 4}" font-size="11">step 0 … {max_step}; loss {high:.3f} → {points[-1][1]:.3f} (red: eval)</text></svg>'
    )


@admin.register(TrainingPolicy)
class TrainingPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "task",
        "enabled",
        "auto_train",
        "min_examples",
        "min_gold_examples",
        "min_average_quality",
        "min_hours_between_jobs",
        "readiness",
    ]

    @admin.display(description="ready?")
    def readiness(self, obj: TrainingPolicy) -> str:
        state = services.readiness(task=obj.task)
        return "ready" if state["ready"] else "; ".join(state["short"])


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "method", "status", "steps", "eval_loss", "heartbeat_at", "created_at", "finished_at"]
    list_filter = ["status", "method", "task"]
    raw_id_fields = ["dataset", "parent_job"]
    readonly_fields = [f.name for f in TrainingJob._meta.fields] + ["steps", "loss_chart"]
    exclude = ["loss_curve"]
    actions = ["cancel", "resume"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # start jobs with the API, `manage.py train` or a dataset's "train" action

    @admin.display(description="progress")
    def steps(self, obj: TrainingJob) -> str:
        if not obj.total_steps:
            return "-"
        eta = f", ETA {obj.eta_seconds:.0f}s" if obj.eta_seconds and obj.status == "running" else ""
        return format_html("{}% ({}/{}){}", round(100 * obj.step / obj.total_steps), obj.step, obj.total_steps, eta)

    @admin.display(description="Loss curve")
    def loss_chart(self, obj: TrainingJob) -> str:
        return loss_svg(obj.loss_curve)

    @admin.action(description="Cancel (a running job stops at its next step)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        done = 0
        for job in queryset:
            try:
                services.job_cancel(job=job)
                done += 1
            except services.TrainingError as exc:
                self.message_user(request, exc.one_line(), messages.WARNING)
        self.message_user(request, f"Cancelled {done} job(s).", messages.SUCCESS)

    @admin.action(description="Resume from the last checkpoint")
    def resume(self, request: HttpRequest, queryset: QuerySet[TrainingJob]) -> None:
        done = 0
        for job in queryset:
            try:
                services.job_enqueue(job=services.job_resume(job=job))
                done += 1
            except services.TrainingError as exc:
                self.message_user(request, exc.one_line(), messages.WARNING)
        self.message_user(request, f"Resumed {done} job(s).", messages.SUCCESS)


@admin.register(TrainableDataset)
class TrainableDatasetAdmin(admin.ModelAdmin):
    """Frozen, untainted datasets, with the action that starts a job on them."""

    list_display = ["__str__", "kind", "frozen_at", "count"]
    list_filter = ["task", "kind"]
    actions = ["start_training"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[TrainableDataset]:
        return super().get_queryset(request).filter(status="frozen", tainted=False)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="items")
    def count(self, obj: TrainableDataset) -> int:
        return obj.stats.get("count", 0)

    @admin.action(description="Start a training job on each (method from the kind)")
    def start_training(self, request: HttpRequest, queryset: QuerySet[TrainableDataset]) -> None:
        started = []
        for dataset in queryset:
            try:
                job = services.job_start(task=dataset.task, dataset_id=dataset.pk, requested_by=f"admin:{request.user.get_username()}")
                started.append(str(job.pk))
            except services.TrainingError as exc:
                self.message_user(request, f"{dataset}: {exc.one_line()}", messages.ERROR)
        if started:
            self.message_user(request, f"Started training job(s) {', '.join(started)}.", messages.SUCCESS)
