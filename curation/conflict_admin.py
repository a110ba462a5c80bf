"""The admin of conflicts (curation/admin.py imports it): both examples side by side, and
actions that resolve through the same service as `POST curation/conflicts/{id}/resolve`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from . import services
from .models import DuplicateConflict, TrainingExample

ROWS = (
    ("prompt", lambda e: format_html_join("", "<div><b>{}</b>: {}</div>", ((m["role"], m["content"]) for m in e.prompt))),
    ("answer (target)", lambda e: format_html("<pre style='white-space:pre-wrap'>{}</pre>", e.target)),
    ("rejected", lambda e: e.rejected or "—"),
    ("tier, quality", lambda e: f"{e.tier}, {e.quality_score:.3f}"),
    ("review", lambda e: e.review_status),
    ("in datasets", lambda e: "yes" if e.duplicate_of_id is None and e.tier != "reject" else "no (held out or rejected)"),
)


def _link(example: TrainingExample, side: str) -> str:
    url = reverse("admin:curation_trainingexample_change", args=[example.pk])
    return format_html('<a href="{}">{}: example {}</a>', url, side, example.pk)


@admin.register(DuplicateConflict)
class DuplicateConflictAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "kind", "reason", "similarity", "status", "kept", "example_a", "example_b", "created_at"]
    list_filter = ["status", "task", "kind", "reason"]
    list_select_related = ["example_a", "example_b"]
    readonly_fields = ["side_by_side", *(f.name for f in DuplicateConflict._meta.fields if f.name not in ("id", "example_a", "example_b"))]
    exclude = ["example_a", "example_b"]
    actions = ["keep_a", "keep_b", "keep_both", "keep_neither"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None  # the changelist's actions resolve; a conflict's page only shows

    @admin.display(description="Both examples")
    def side_by_side(self, obj: DuplicateConflict) -> str:
        a, b = obj.example_a, obj.example_b
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td><td>{}</td></tr>", ((name, cell(a), cell(b)) for name, cell in ROWS))
        return format_html(
            '<table style="table-layout:fixed;width:100%"><tr><th></th><th>{}</th><th>{}</th></tr>{}</table>',
            _link(a, "a (better)"), _link(b, "b (held out while open)"), rows,
        )  # fmt: skip

    def _resolve(self, request: HttpRequest, queryset: QuerySet[DuplicateConflict], keep: str) -> None:
        resolved, by = 0, f"admin:{request.user.get_username()}"
        for pk in queryset.filter(status=DuplicateConflict.Status.OPEN).order_by("pk").values_list("pk", flat=True):
            try:
                services.conflict_resolve(conflict_id=pk, keep=keep, resolved_by=by, reviewer=request.user)
                resolved += 1
            except services.CurationError as exc:  # one that an earlier resolution in this batch settled
                self.message_user(request, f"Conflict {pk}: {exc.one_line()}", messages.WARNING)
        self.message_user(request, f"Resolved {resolved} conflict(s), kept: {keep}.", messages.SUCCESS)

    @admin.action(description="Keep a (reject b and its duplicates)")
    def keep_a(self, request: HttpRequest, queryset: QuerySet[DuplicateConflict]) -> None:
        self._resolve(request, queryset, "a")

    @admin.action(description="Keep b (reject a and its duplicates)")
    def keep_b(self, request: HttpRequest, queryset: QuerySet[DuplicateConflict]) -> None:
        self._resolve(request, queryset, "b")

    @admin.action(description="Keep both (not a conflict: both stay in datasets)")
    def keep_both(self, request: HttpRequest, queryset: QuerySet[DuplicateConflict]) -> None:
        self._resolve(request, queryset, "both")

    @admin.action(description="Keep neither (reject both)")
    def keep_neither(self, request: HttpRequest, queryset: QuerySet[DuplicateConflict]) -> None:
        self._resolve(request, queryset, "neither")
