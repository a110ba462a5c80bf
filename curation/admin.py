from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from learning_platform.dashboard.flags import admin_links, changelist_link, tainted_flag, tainted_warning

from . import services
from .importers import import_run_start, import_upload_save
from .importers.formats import FORMATS
from .models import CurationConfig, CurationRun, Dataset, DatasetItem, GitImportCursor, ImportRun, KnowledgeGap, TrainingExample

DATASET_FILTERS = ("min_tier", "categories", "max_size", "balance", "eval_ratio", "seed")


@admin.register(CurationConfig)
class CurationConfigAdmin(admin.ModelAdmin):
    list_display = ["task", "min_score", "gold_threshold", "silver_threshold", "bronze_threshold", "near_duplicate_threshold"]


@admin.register(TrainingExample)
class TrainingExampleAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "kind", "origin", "tier", "quality_score", "review_status", "duplicate_of", "created_at"]
    list_filter = ["tier", "kind", "task", "review_status", "category"]
    search_fields = ["target", "=content_hash", "=key"]
    raw_id_fields = ["source_interaction", "duplicate_of", "reviewed_by"]
    readonly_fields = [f.name for f in TrainingExample._meta.fields if f.name != "id"] + ["signal_breakdown"]
    exclude = ["signals"]
    actions = ["approve", "reject"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Why this score")
    def signal_breakdown(self, obj: TrainingExample) -> str:
        signals = obj.signals.get("signals", {})
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>", ((name, s["value"], s["weight"]) for name, s in sorted(signals.items()))
        )
        problems = ", ".join(obj.signals.get("sanity_problems", [])) or "none"
        return format_html(
            "<table><tr><th>signal</th><th>value</th><th>weight</th></tr>{}</table>"
            "<p>weighted mean {} times sanity {} (problems: {}) = quality {} → {}{}</p>",
            rows, obj.signals.get("weighted_mean"), obj.signals.get("sanity"), problems, obj.quality_score, obj.tier,
            f" (review: {obj.signals['review']})" if obj.signals.get("review") else "",
        )  # fmt: skip

    @admin.action(description="Approve (they become gold)")
    def approve(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        count = services.example_review(examples=queryset, approve=True, reviewer=request.user)
        self.message_user(request, f"Approved {count} example(s).", messages.SUCCESS)

    @admin.action(description="Reject (they leave every future dataset)")
    def reject(self, request: HttpRequest, queryset: QuerySet[TrainingExample]) -> None:
        count = services.example_review(examples=queryset, approve=False, reviewer=request.user)
        self.message_user(request, f"Rejected {count} example(s).", messages.SUCCESS)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["__str__", "kind", "status", "item_count", "taint", "created_at", "frozen_at"]
    list_filter = ["task", "kind", "status", "tainted"]
    readonly_fields = ["taint_warning", "manifest_hash", "stats_table", "related", "tainted_reason", "frozen_by", "frozen_at", "created_at",
                       "status"]  # fmt: skip
    exclude = ["stats", "tainted"]
    actions = ["freeze"]

    def get_readonly_fields(self, request: HttpRequest, obj: Dataset | None = None) -> list[str]:
        if obj is not None and obj.status == Dataset.Status.FROZEN:
            return (
                ["taint_warning"]
                + [f.name for f in Dataset._meta.fields if f.name not in ("stats", "tainted")]
                + ["stats_table", "related"]
            )
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Dataset, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        filters = {k: v for k, v in (obj.filters or {}).items() if k in DATASET_FILTERS}
        created = services.dataset_create(task=obj.task, kind=obj.kind, name=obj.name, created_by=request.user.get_username(), **filters)
        obj.pk, obj.version, obj.filters = created.pk, created.version, created.filters
        obj._state.adding = False

    def get_fields(self, request: HttpRequest, obj: Dataset | None = None) -> list[str]:
        if obj is None:
            return ["task", "name", "kind", "filters"]
        return super().get_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Dataset | None = None) -> bool:
        return obj is None or obj.status != Dataset.Status.FROZEN

    @admin.display(description="items")
    def item_count(self, obj: Dataset) -> str:
        erased = obj.stats.get("erased", {}).get("items", 0)
        return f"{obj.stats.get('count', 0)} ({erased} erased)" if erased else str(obj.stats.get("count", 0))

    @admin.display(description="tainted")
    def taint(self, obj: Dataset) -> str:
        return tainted_flag(obj.tainted, obj.tainted_reason)

    @admin.display(description="Tainted")
    def taint_warning(self, obj: Dataset) -> str:
        return tainted_warning(obj.tainted, obj.tainted_reason, "dataset")

    @admin.display(description="Stats")
    def stats_table(self, obj: Dataset) -> str:
        erased = obj.stats.get("erased", {})
        removed = ""
        if erased.get("items"):
            text = "<b>Erasures removed {} of the {} items frozen</b>; {} are left (below: what is left; the hash: what was frozen)."
            removed = format_html('<p style="color:#ba2121">' + text + "</p>", erased["items"], erased["frozen_count"], obj.stats["count"])
        rest = {k: v for k, v in obj.stats.items() if k != "erased"}
        return format_html("{}<pre>{}</pre>", removed, json.dumps(rest, indent=2))

    @admin.display(description="Related")
    def related(self, obj: Dataset) -> str:
        jobs, versions = obj.training_jobs.order_by("-created_at")[:20], obj.model_versions.order_by("-created_at")[:20]
        return format_html(
            "<div>training jobs: {}</div><div>model versions: {}</div><div>{}</div>", admin_links(jobs), admin_links(versions),
            changelist_link("curation_datasetitem", f"dataset__id__exact={obj.pk}", "its items"),
        )  # fmt: skip

    @admin.action(description="Freeze (snapshot, split and hash the selected drafts)")
    def freeze(self, request: HttpRequest, queryset: QuerySet[Dataset]) -> None:
        frozen = 0
        for dataset in queryset.filter(status=Dataset.Status.DRAFT):
            try:
                services.dataset_freeze(dataset=dataset, frozen_by=request.user.get_username())
                frozen += 1
            except services.CurationError as exc:
                self.message_user(request, f"{dataset}: {exc.one_line()}", messages.ERROR)
        self.message_user(request, f"Froze {frozen} dataset(s).", messages.SUCCESS)


@admin.register(DatasetItem)
class DatasetItemAdmin(admin.ModelAdmin):
    list_display = ["dataset", "split", "position", "kind", "tier", "quality_score"]
    list_filter = ["split", "kind", "tier"]
    list_select_related = ["dataset"]
    raw_id_fields = ["dataset", "example"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CurationRun)
class CurationRunAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "status", "progress_percent", "attempts", "heartbeat_at", "created_at", "finished_at", "requested_by"]
    list_filter = ["status", "task"]
    readonly_fields = [f.name for f in CurationRun._meta.fields if f.name not in ("task", "since")] + ["counts_table"]
    exclude = ["counts"]

    def save_model(self, request: HttpRequest, obj: CurationRun, form: Any, change: bool) -> None:
        if change:
            return
        run = services.curation_run_start(task=obj.task, since=obj.since, requested_by=f"admin:{request.user.get_username()}")
        obj.pk = run.pk
        obj._state.adding = False

    @admin.display(description="progress")
    def progress_percent(self, obj: CurationRun) -> str:
        return f"{obj.progress:.0f}%"

    @admin.display(description="Counts per stage")
    def counts_table(self, obj: CurationRun) -> str:
        return format_html_join("", "<div>{}: {}</div>", sorted(obj.counts.items()))


@admin.register(KnowledgeGap)
class KnowledgeGapAdmin(admin.ModelAdmin):
    list_display = ["representative", "task", "size", "created_at"]
    list_filter = ["task"]
    readonly_fields = ["task", "representative", "size", "examples", "created_at"]
    exclude = ["interaction_ids"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


from . import conflict_admin  # noqa: E402, F401  (registers conflicts)
from .lessons import admin as lessons_admin  # noqa: E402, F401  (registers lessons and memory)


class ImportUploadForm(forms.ModelForm):
    """The admin page of an import: a JSONL file for a task, queued like an API upload."""

    upload = forms.FileField(help_text="JSON Lines: messages, alpaca, sharegpt, prompt_completion, dpo, kto or openai records.")
    format = forms.ChoiceField(choices=[(f, f) for f in ("auto", *FORMATS)], initial="auto")
    source = forms.ChoiceField(choices=[("staff", "staff"), ("user", "user")], initial="staff")

    class Meta:
        model = ImportRun
        fields = ["upload", "task", "client", "format", "source", "dry_run"]


@admin.register(ImportRun)
class ImportRunAdmin(admin.ModelAdmin):
    list_display = ["id", "origin", "task", "file_name", "status", "progress", "dry_run", "created_at"]
    list_filter = ["status", "origin", "task"]
    list_select_related = ["client"]
    raw_id_fields = ["client"]

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ImportUploadForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [f.name for f in ImportRun._meta.fields if f.name != "id"] if obj else []

    def save_model(self, request: HttpRequest, obj: ImportRun, form: Any, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        run = import_run_start(
            client=data["client"], task=data["task"], path=str(import_upload_save(upload=data["upload"])), fmt=data["format"],
            source=data["source"], dry_run=data["dry_run"], file_name=data["upload"].name[:255],
            requested_by=f"admin:{request.user.get_username()}",
        )  # fmt: skip
        obj.pk = run.pk
        obj.refresh_from_db()
        self.message_user(request, f"Import run {run.pk} queued.", messages.SUCCESS)


@admin.register(GitImportCursor)
class GitImportCursorAdmin(admin.ModelAdmin):
    list_display = ["repository", "branch", "task", "last_commit", "updated_at"]
    readonly_fields = ["repository", "branch", "task", "last_commit", "updated_at"]
