from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html_join

from .models import EvalCase, EvalRun, EvalSuite


class EvalCaseInline(admin.TabularInline):
    model = EvalCase
    extra = 1
    fields = ["category", "messages", "expected", "keywords", "expects_json", "weight"]


@admin.register(EvalSuite)
class EvalSuiteAdmin(admin.ModelAdmin):
    list_display = ["task", "name", "case_count", "created_at"]
    list_filter = ["task"]
    inlines = [EvalCaseInline]

    @admin.display(description="cases")
    def case_count(self, obj: EvalSuite) -> int:
        return obj.cases.count()


@admin.register(EvalRun)
class EvalRunAdmin(admin.ModelAdmin):
    list_display = ["version", "suite", "status", "score", "mean_latency_ms", "created_at"]
    list_filter = ["status", "suite__task"]
    list_select_related = ["version", "suite"]
    readonly_fields = ["version", "suite", "status", "score", "mean_latency_ms", "categories", "error", "created_at", "finished_at"]
    exclude = ["results", "by_category"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Per category")
    def categories(self, obj: EvalRun) -> Any:
        return format_html_join(
            "", "<div>{}: score {}, {} ms</div>", ((c, v["score"], v["latency_ms"]) for c, v in sorted(obj.by_category.items()))
        )
