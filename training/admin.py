from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.templatetags.static import static
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from learning_platform import schedule_admin  # noqa: F401  (the task queue's schedules get a "Run now" action)
from learning_platform.dashboard.flags import admin_link, admin_links, changelist_link
from learning_platform.dashboard.live import job_live

from . import services
from .models import TrainableDataset, TrainingJob, TrainingPolicy


class TrainingPolicyForm(forms.ModelForm):
    """Validated by the same service as the API and `manage.py training_policy`."""

    class Meta:
        model = TrainingPolicy
        fields = ["task", *services.POLICY_FIELDS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        changes = {name: cleaned[name] for name in services.POLICY_FIELDS if name in cleaned}
        try:
            services.policy_validate(changes=changes)
        except services.TrainingError as exc:
            for name, problems in exc.fields.items():
                self.add_error(name if name in self.fields else None, problems)
        return cleaned


@admin.register(TrainingPolicy)
class TrainingPolicyAdmin(admin.ModelAdmin):
    form = TrainingPolicyForm
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

    def get_readonly_fields(self, request: HttpRequest, obj: TrainingPolicy | None = None) -> list[str]:
        return ["task"] if obj else []

    def save_model(self, request: HttpRequest, obj: TrainingPolicy, form: forms.ModelForm, change: bool) -> None:
        changes = {name: form.cleaned_data[name] for name in services.POLICY_FIELDS if name in form.cleaned_data}
        saved = services.policy_update(task=obj.task, changes=changes)
        obj.pk = saved.pk

    @admin.display(description="ready?")
    def readiness(self, obj: TrainingPolicy) -> str:
        state = services.readiness(task=obj.task)
        return "ready" if state["ready"] else "; ".join(state["short"])


# A job's page: the chart and the state up top; the recipe, metrics and other raw JSON folded away below.
JOB_SUMMARY = ["loss_chart", "task", "status", "related", "method", "backend", "base_model", "eval_loss", "attempts", "created_at",
               "started_at", "heartbeat_at", "finished_at", "requested_by", "error"]  # fmt: skip
JOB_DETAILS = [f.name for f in TrainingJob._meta.fields if f.name not in {*JOB_SUMMARY, "log_tail", "loss_curve", "id"}]


@admin.register(TrainingJob)
class TrainingJobAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "method", "status", "steps", "eval_loss", "heartbeat_at", "created_at", "finished_at"]
    list_filter = ["status", "method", "task"]
    raw_id_fields = ["dataset", "parent_job"]
    readonly_fields = [f.name for f in TrainingJob._meta.fields] + ["steps", "loss_chart", "related"]
    actions = ["cancel", "resume"]
    fieldsets = [
        (None, {"fields": JOB_SUMMARY}),
        ("Log", {"fields": ["log_tail"], "classes": ["collapse"]}),
        ("Recipe, metrics and raw details", {"classes": ["collapse"], "fields": JOB_DETAILS}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # start jobs with the API, `manage.py train` or a dataset's "train" action

    @admin.display(description="progress")
    def steps(self, obj: TrainingJob) -> str:
        if not obj.total_steps:
            return "-"
        eta = f", ETA {obj.eta_seconds:.0f}s" if obj.eta_seconds and obj.status == "running" else ""
        return format_html("{}% ({}/{}){}", round(100 * obj.step / obj.total_steps), obj.step, obj.total_steps, eta)

    @admin.display(description="Progress and loss (live)")
    def loss_chart(self, obj: TrainingJob) -> str:
        live = job_live(obj)
        return format_html(
            '<div data-live-job="{}"><div style="height:12px;width:640px;max-width:100%;background:#e6e6e6;border-radius:6px;'
            'overflow:hidden"><div data-field="bar" style="height:100%;background:#417690;width:{}%"></div></div>'
            '<p data-field="text">{}</p><div data-field="chart">{}</div></div>'
            '<script src="{}" data-url="{}" data-seconds="3" defer></script>',
            obj.pk, live["progress"], live["text"], mark_safe(live["chart"]),  # noqa: S308 (escaped SVG)
            static("dashboard/live.js"), reverse("dashboard-live"),
        )  # fmt: skip

    @admin.display(description="Related")
    def related(self, obj: TrainingJob) -> str:
        version = getattr(obj, "model_version", None)
        experiments = version.experiments.select_related("challenger", "control")[:10] if version else []
        rows = [
            ("dataset", admin_link(obj.dataset)), ("model version", admin_link(version)), ("experiments", admin_links(experiments)),
            ("continued from", admin_link(obj.parent_job)),
            ("lifecycle events", changelist_link("registry_lifecycleevent", f"to_version__id__exact={version.pk}", "of its version")
             if version else "-"),
        ]  # fmt: skip
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

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
