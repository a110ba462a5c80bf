from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from learning_platform.dashboard import views as dashboard
from learning_platform.metrics import metrics_view
from registry.serving_apis import ChatCompletionsApi, ModelDetailApi, ModelListApi


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("", dashboard.home, name="home"),
    path("admin/", admin.site.admin_view(dashboard.dashboard), name="dashboard"),  # the admin's index: the control room
    path("admin/dashboard/live.json", dashboard.live, name="dashboard-live"),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/v1/", include("interactions.urls")),
    path("api/v1/", include("curation.urls")),
    path("api/v1/", include("training.urls")),
    path("api/v1/", include("registry.urls")),
    path("api/v1/", include("abtesting.urls")),
    path("v1/chat/completions", ChatCompletionsApi.as_view(), name="chat-completions"),
    path("v1/models", ModelListApi.as_view(), name="openai-models"),
    path("v1/models/<str:model_id>", ModelDetailApi.as_view(), name="openai-model"),
]

handler400 = "learning_platform.errors.bad_request"
handler404 = "learning_platform.errors.not_found"
handler500 = "learning_platform.errors.server_error"
