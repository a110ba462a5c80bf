"""Admin of lessons and memory (registered from curation/admin.py)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from .models import Lesson, LessonSettings, Memory, Persona, PersonaChange
from .services import lesson_reinstate, lesson_retire


@admin.register(LessonSettings)
class LessonSettingsAdmin(admin.ModelAdmin):
    list_display = ["task", "recall_enabled", "recall_threshold", "few_shot_enabled", "few_shot_k", "memory_enabled"]
    readonly_fields = ["index_version", "removal_version", "updated_at"]


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "origin", "status", "downvotes", "prompt_text", "created_at"]
    list_filter = ["task", "status", "origin"]
    search_fields = ["prompt_text", "answer"]
    raw_id_fields = ["example", "source_interaction", "subject"]
    readonly_fields = ["vector", "downvotes", "created_at", "updated_at"]
    actions = ["retire", "reinstate"]

    @admin.action(description="Retire: never injected or recalled again")
    def retire(self, request: HttpRequest, queryset: QuerySet[Lesson]) -> None:
        lessons = list(queryset)
        for lesson in lessons:
            lesson_retire(lesson=lesson, reason=f"retired by {request.user}")
        self.message_user(request, f"{len(lessons)} lessons retired.")

    @admin.action(description="Reinstate (downvotes reset)")
    def reinstate(self, request: HttpRequest, queryset: QuerySet[Lesson]) -> None:
        lessons = list(queryset)
        for lesson in lessons:
            lesson_reinstate(lesson=lesson)
        self.message_user(request, f"{len(lessons)} lessons reinstated.")


class PersonaChangeInline(admin.TabularInline):
    model = PersonaChange
    extra = 0
    readonly_fields = ["facet", "before", "after", "cause", "feedback_id", "created_at"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Persona)
class PersonaAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "facets", "updated_at"]
    raw_id_fields = ["subject"]
    inlines = [PersonaChangeInline]


@admin.register(Memory)
class MemoryAdmin(admin.ModelAdmin):
    list_display = ["id", "subject", "kind", "text", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["subject"]
