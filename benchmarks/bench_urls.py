"""The platform's URLs plus `/bench/bare`: a plain Django view (no DRF, no auth, no validation)
doing the same interaction insert, as the baseline of benchmarks/ingest.py."""

from __future__ import annotations

import json
import uuid

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from interactions.models import Interaction
from learning_platform.urls import urlpatterns as platform_urls


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    client_id = int(request.headers["X-Client-Id"])
    data.pop("user_id", None)
    interaction = Interaction.objects.create(id=uuid.uuid4(), client_id=client_id, **data)
    return JsonResponse({"id": str(interaction.id)}, status=201)


urlpatterns = [*platform_urls, path("bench/bare", bare)]
