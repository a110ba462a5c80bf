from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from learning_platform.dashboard import series
from learning_platform.dashboard.flags import admin_link, admin_links, changelist_link, tainted_flag, tainted_warning
from learning_platform.dashboard.trends import TREND_DAYS, version_trends
from learning_platform.errors import DomainError
from learning_platform.jobs import LIFECYCLE_FIELDS

from . import services
from .models import ActiveModel, LifecycleEvent, ModelVersion, PromotionPolicy, Retraining, ServingRoute, VersionStats


def confirm_reason(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any], title: str, action: str
) -> str | HttpResponse:
    """The reason from the confirmation page, or the page itself until it is submitted."""
    if "confirm_submit" in request.POST and request.POST.get("reason", "").strip():
        return request.POST["reason"].strip()
    context = {**model_admin.admin_site.each_context(request), "title": title, "objects": queryset, "action_name": action,
               "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME), "opts": model_admin.model._meta}  # fmt: skip
    return TemplateResponse(request, "admin/registry/confirm_action.html", context)


def reason_action(name: str, title: str, service: Callable[..., Any], *, argument: str = "version") -> Callable[..., HttpResponse | None]:
    """An admin action that asks for a reason, then calls service(<argument>=obj, actor=, reason=)
    for each selected object; a refusal (any DomainError) becomes an error message."""

    def action(model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        reason = confirm_reason(model_admin, request, queryset, title, name)
        if not isinstance(reason, str):
            return reason
        for obj in queryset:
            try:
                service(**{argument: obj}, actor=f"admin:{request.user.get_username()}", reason=reason)
                model_admin.message_user(request, f"{title}: {obj}", messages.SUCCESS)
            except DomainError as exc:
                model_admin.message_user(request, exc.one_line(), messages.ERROR)
        return None

    action.__name__ = name
    return admin.action(description=title)(action)


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "task", "status", "taint", "eval_loss", "training_job", "dataset", "created_at"]
    list_filter = ["task", "status", "tainted"]
    search_fields = ["name"]
    readonly_fields = ["taint_warning", "related", "trends", *[f.name for f in ModelVersion._meta.fields if f.name != "tainted"]]
    fields = readonly_fields
    list_select_related = ["training_job", "dataset"]
    actions = [
        reason_action("approve", "Approve", services.version_approve),
        reason_action("reject", "Reject", services.version_reject),
        reason_action("promote", "Promote to champion", services.version_promote),
        reason_action("retire", "Retire", services.version_retire),
        "compare",
        "export_adapter",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # versions come from training jobs

    @admin.display(description="eval loss")
    def eval_loss(self, obj: ModelVersion) -> Any:
        return obj.metrics.get("eval_loss", "-")

    @admin.display(description="tainted")
    def taint(self, obj: ModelVersion) -> str:
        return tainted_flag(obj.tainted, obj.tainted_reason)

    @admin.display(description="Tainted")
    def taint_warning(self, obj: ModelVersion) -> str:
        return tainted_warning(obj.tainted, obj.tainted_reason, "version")

    @admin.display(description="Related")
    def related(self, obj: ModelVersion) -> str:
        rows = [
            ("trained by", admin_link(obj.training_job)), ("on dataset", admin_link(obj.dataset)), ("parent", admin_link(obj.parent)),
            ("children", admin_links(obj.children.order_by("number"))), ("retrains", admin_link(obj.retrained_from)),
            ("experiments", admin_links(obj.experiments.select_related("challenger", "control").order_by("-created_at")[:10])),
            ("lifecycle events", changelist_link("registry_lifecycleevent", f"to_version__id__exact={obj.pk}", "to this version")),
            ("genealogy", format_html('<a href="{}">the tree</a>', reverse("admin:registry_genealogy"))),
        ]  # fmt: skip
        return format_html("<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows))

    @admin.display(description=f"Traffic, last {TREND_DAYS} days")
    def trends(self, obj: ModelVersion) -> str:
        charts = series.version_trend_charts(version_trends(name=obj.name), title=obj.name)
        return mark_safe('<div style="display:flex;flex-wrap:wrap;gap:8px">' + "".join(charts) + "</div>")  # noqa: S308 (escaped SVG)

    @admin.action(description="Compare two versions")
    def compare(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> HttpResponse | None:
        if queryset.count() != 2:
            self.message_user(request, "Select exactly two versions to compare.", messages.WARNING)
            return None
        first, second = queryset.order_by("created_at")
        table = services.versions_compare(first=first, second=second)
        lines = [f"{name}: {row[first.name]} → {row[second.name]} ({row['change_percent']}%)" for name, row in table["metrics"].items()]
        self.message_user(request, f"{first.name} vs {second.name}: " + "; ".join(lines), messages.INFO)
        return None

    @admin.action(description="Export the adapter (with lineage and card) under ARTIFACTS_DIR/exports")
    def export_adapter(self, request: HttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        from django.conf import settings
        from django.utils import timezone

        from .export import version_export

        done = 0
        for version in queryset:
            out = Path(settings.ARTIFACTS_DIR) / "exports" / f"{version.name}-adapter-{timezone.now():%Y%m%d%H%M%S}"
            try:
                version_export(version=version, fmt="adapter", out=out)
            except DomainError as exc:
                self.message_user(request, f"{version.name}: {exc.one_line()}", messages.ERROR)
                continue
            done += 1
            self.message_user(request, f"{version.name} exported to {out}", messages.SUCCESS)
        if done:
            self.message_user(request, f"{done} exported (merged and ollama: manage.py export_model).", messages.INFO)

    def get_urls(self) -> list[Any]:
        return [path("genealogy/", self.admin_site.admin_view(self.genealogy), name="registry_genealogy"), *super().get_urls()]

    def genealogy(self, request: HttpRequest) -> HttpResponse:
        """Every task's versions as a tree (parents above children), champion starred."""
        active = set(ActiveModel.objects.values_list("version_id", flat=True))
        versions = list(ModelVersion.objects.order_by("task", "number"))
        children: dict[int | None, list[ModelVersion]] = {}
        for version in versions:
            children.setdefault(version.parent_id, []).append(version)
        tasks: dict[str, list[dict[str, Any]]] = {}

        def walk(version: ModelVersion, depth: int) -> None:
            url = reverse("admin:registry_modelversion_change", args=[version.pk])
            tasks.setdefault(version.task, []).append(
                {
                    "version": version,
                    "depth": depth * 1.5,
                    "active": version.pk in active,
                    "url": url,
                    "eval_loss": version.metrics.get("eval_loss"),
                }
            )
            for child in children.get(version.pk, []):
                walk(child, depth + 1)

        for root in children.get(None, []):
            walk(root, 0)
        trees = {
            task: series.genealogy_chart(
                [{"id": r["version"].pk, "name": r["version"].name, "parent_id": r["version"].parent_id, "status": r["version"].status,
                  "tainted": r["version"].tainted, "champion": r["active"], "url": r["url"]} for r in rows],
                title=f"Genealogy of {task}", chart_id=f"genealogy-{task}",
            )
            for task, rows in tasks.items()
        }  # fmt: skip
        shown = [(task, rows, mark_safe(trees[task])) for task, rows in sorted(tasks.items())]  # noqa: S308 (escaped SVG)
        context = {**self.admin_site.each_context(request), "title": "Model genealogy", "tasks": shown}
        return TemplateResponse(request, "admin/registry/genealogy.html", context)


@admin.register(ActiveModel)
class ActiveModelAdmin(admin.ModelAdmin):
    list_display = ["task", "version", "revision", "updated_at"]
    readonly_fields = ["task", "version", "revision", "updated_at"]
    actions = ["rollback"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Roll back to the previous champion")
    def rollback(self, request: HttpRequest, queryset: QuerySet[ActiveModel]) -> HttpResponse | None:
        reason = confirm_reason(self, request, queryset, "Roll back to the previous champion", "rollback")
        if not isinstance(reason, str):
            return reason
        for row in queryset:
            try:
                version = services.version_rollback(task=row.task, actor=f"admin:{request.user.get_username()}", reason=reason)
                self.message_user(request, f"{row.task} rolled back to {version.name}", messages.SUCCESS)
            except services.RegistryError as exc:
                self.message_user(request, exc.one_line(), messages.ERROR)
        return None


@admin.register(LifecycleEvent)
class LifecycleEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "task", "action", "from_version", "to_version", "actor", "reason"]
    list_filter = ["task", "action"]
    list_select_related = ["from_version", "to_version"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ServingRoute)
class ServingRouteAdmin(admin.ModelAdmin):
    """Routes name versions of their own task that may serve (ServingRoute.clean)."""

    list_display = ["task", "version", "capabilities", "priority", "enabled", "trust"]
    list_filter = ["task", "enabled"]
    list_select_related = ["version"]
    raw_id_fields = ["version"]

    @admin.display(description="trust (registry/stats.py)")
    def trust(self, obj: ServingRoute) -> str:
        row = VersionStats.objects.filter(task=obj.task, version=obj.version.name).values_list("trust", flat=True).first()
        return "-" if row is None else f"{row:.3f}"


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(admin.ModelAdmin):
    list_display = ["task", "auto_promote", "on_taint"]


@admin.register(Retraining)
class RetrainingAdmin(admin.ModelAdmin):
    """Retrainings after erasures (registry/erasure.py): read-only, the runner and reaper write them."""

    list_display = ["version", "status", "erasure", "dataset", "training_job", "created_at"]
    list_filter = ["status"]
    list_select_related = ["version", "dataset", "training_job"]
    readonly_fields = ["version", "erasure", "dataset", "training_job", *LIFECYCLE_FIELDS]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
