from __future__ import annotations

from django.urls import path

from . import apis

urlpatterns = [
    path("interactions", apis.InteractionListCreateApi.as_view(), name="interactions"),
    path("interactions/batch", apis.InteractionBatchApi.as_view(), name="interactions-batch"),
    path("interactions/<uuid:interaction_id>", apis.InteractionDetailApi.as_view(), name="interaction-detail"),
    path("interactions/<uuid:interaction_id>/feedback", apis.FeedbackCreateApi.as_view(), name="interaction-feedback"),
    path("subjects/<str:user_id>/opt-out", apis.SubjectOptOutApi.as_view(), name="subject-opt-out"),
    path("subjects/<str:user_id>/export", apis.SubjectExportApi.as_view(), name="subject-export"),
    path("subjects/<str:user_id>", apis.SubjectEraseApi.as_view(), name="subject-erase"),
]
