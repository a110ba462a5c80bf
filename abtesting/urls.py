from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("experiments", apis.ExperimentListApi.as_view(), name="experiments"),
    path("experiments/<int:pk>", apis.ExperimentDetailApi.as_view(), name="experiment"),
    path("experiments/<int:pk>/<str:action>", apis.ExperimentActionApi.as_view(), name="experiment-action"),
    path("evaluations/reports", apis.ReportListApi.as_view(), name="evaluation-reports"),
    path("evaluations/settings/<slug:task>", apis.EvaluationSettingsApi.as_view(), name="evaluation-settings"),
]
