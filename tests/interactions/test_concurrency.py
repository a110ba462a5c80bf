from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from interactions.models import Interaction
from tests.factories import ApiClientFactory
from tests.interactions.test_apis import URL, payload


def _post_from_threads(count, send):
    barrier = threading.Barrier(count)
    statuses, errors = [], []

    def worker():
        api = APIClient()
        try:
            barrier.wait()
            statuses.append(send(api))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return statuses


@pytest.mark.django_db(transaction=True)
def test_the_same_key_from_20_threads_leaves_exactly_one_row():
    client = ApiClientFactory(scopes=["ingest"])
    auth = f"Bearer {client.raw_key}"

    def send(api):
        return api.post(URL, payload(), format="json", HTTP_AUTHORIZATION=auth, HTTP_IDEMPOTENCY_KEY="race").status_code

    statuses = _post_from_threads(20, send)
    assert Interaction.objects.count() == 1
    assert sorted(statuses) == [200] * 19 + [201]


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_from_8_threads_stores_each_item_once():
    client = ApiClientFactory(scopes=["ingest"])
    auth = f"Bearer {client.raw_key}"
    batch = {"items": [payload(idempotency_key=f"b{i}", user_id=f"new-user-{i}") for i in range(20)]}

    def send(api):
        return api.post("/api/v1/interactions/batch", batch, format="json", HTTP_AUTHORIZATION=auth).status_code

    statuses = _post_from_threads(8, send)
    assert Interaction.objects.count() == 20
    assert sorted(statuses) == [200] * 7 + [201]
