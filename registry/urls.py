from __future__ import annotations

from django.urls import path

from . import apis, serving_apis

urlpatterns = [
    path("generate", serving_apis.GenerateApi.as_view(), name="generate"),
    path("models", apis.VersionListApi.as_view(), name="models"),
    path("models/active", apis.ActiveApi.as_view(), name="models-active"),
    path("models/compare", apis.CompareApi.as_view(), name="models-compare"),
    path("models/events", apis.EventListApi.as_view(), name="models-events"),
    path("models/performance", apis.PerformanceApi.as_view(), name="models-performance"),
    path("models/rollback/<slug:task>", apis.RollbackApi.as_view(), name="models-rollback"),
    path("models/<str:name>", apis.VersionDetailApi.as_view(), name="model"),
    path("models/<str:name>/export", apis.VersionExportApi.as_view(), name="model-export"),
    path("models/<str:name>/<str:action>", apis.VersionActionApi.as_view(), name="model-action"),
]
