"""The platform's URLs plus two baselines for benchmarks/ingest.py, plain Django views with no
DRF, no API key, no validation:

  /bench/bare         the same database work as the platform's POST: find the subject by its
                      keyed hash (create it if new), then insert the interaction;
  /bench/insert-only  only the interaction insert, no subject.
"""

from __future__ import annotations

import json
import uuid

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from interactions.models import ApiClient, Interaction, Subject
from interactions.services import subject_hash
from learning_platform.urls import urlpatterns as platform_urls


@csrf_exempt
def bare(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    client = ApiClient(pk=int(request.headers["X-Client-Id"]))
    user_hash = subject_hash(client=client, user_id=data.pop("user_id"))
    found = list(Subject.objects.filter(client=client, user_hash=user_hash).values_list("pk", flat=True)[:1])
    subject_id = found[0] if found else Subject.objects.get_or_create(client=client, user_hash=user_hash)[0].pk
    interaction = Interaction.objects.create(id=uuid.uuid4(), client=client, subject_id=subject_id, **data)
    return JsonResponse({"id": str(interaction.id)}, status=201)


@csrf_exempt
def insert_only(request: HttpRequest) -> JsonResponse:
    data = json.loads(request.body)
    data.pop("user_id", None)
    interaction = Interaction.objects.create(id=uuid.uuid4(), client_id=int(request.headers["X-Client-Id"]), **data)
    return JsonResponse({"id": str(interaction.id)}, status=201)


urlpatterns = [*platform_urls, path("bench/bare", bare), path("bench/insert-only", insert_only)]
