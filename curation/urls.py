from __future__ import annotations

from django.urls import path

from . import apis
from .lessons import apis as lesson_apis

urlpatterns = [
    path("curation/runs", apis.RunCreateApi.as_view(), name="curation-runs"),
    path("curation/runs/<int:run_id>", apis.RunDetailApi.as_view(), name="curation-run"),
    path("curation/gaps", apis.GapListApi.as_view(), name="curation-gaps"),
    path("curation/conflicts", apis.ConflictListApi.as_view(), name="curation-conflicts"),
    path("curation/conflicts/<int:conflict_id>/resolve", apis.ConflictResolveApi.as_view(), name="curation-conflict-resolve"),
    path("datasets", apis.DatasetListApi.as_view(), name="datasets"),
    path("datasets/<int:dataset_id>", apis.DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<int:dataset_id>/export", apis.DatasetExportApi.as_view(), name="dataset-export"),
    path("imports", apis.ImportCreateApi.as_view(), name="imports"),
    path("imports/<int:run_id>", apis.ImportDetailApi.as_view(), name="import"),
    path("lessons/settings/<slug:task>", lesson_apis.LessonSettingsApi.as_view(), name="lesson-settings"),
    path("subjects/<str:user_id>/memory", lesson_apis.SubjectMemoryApi.as_view(), name="subject-memory"),
]
