from __future__ import annotations

import pytest
from django.test import override_settings

from interactions.models import Candidate, Interaction, Subject
from tests.interactions.test_apis import payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/interactions/batch"


def items(count, **overrides):
    return [payload(idempotency_key=f"k{i}", user_id=f"u{i % 3}", output_text=f"answer {i}", **overrides) for i in range(count)]


def test_a_batch_is_stored_with_results_in_order(api):
    batch = items(10, candidates=[{"text": "a"}, {"text": "b"}], client_context={"user_agent": "x"})
    response = api.post(URL, {"items": batch})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["created"], body["replayed"], body["not_stored"]) == (10, 0, 0)
    assert [r["index"] for r in body["results"]] == list(range(10))
    stored = Interaction.objects.get(pk=body["results"][3]["id"])
    assert stored.output_text == "answer 3"
    assert stored.tokens_total == 21
    assert Subject.objects.count() == 3
    assert Candidate.objects.count() == 20
    assert stored.client_context.user_agent == "x"


def test_one_bad_item_fails_the_whole_batch_and_names_its_index(api):
    batch = items(5)
    batch[3]["confidence"] = 7
    batch[1]["wat"] = True
    response = api.post(URL, {"items": batch})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"1", "3"}
    assert "confidence" in response.json()["errors"]["3"]
    assert not Interaction.objects.exists()
    assert not Subject.objects.exists()


def test_a_replayed_batch_stores_nothing_new(api):
    first = api.post(URL, {"items": items(4)}).json()
    again = api.post(URL, {"items": items(4)})
    assert again.status_code == 200
    assert again.json()["replayed"] == 4
    assert [r["id"] for r in again.json()["results"]] == [r["id"] for r in first["results"]]
    assert Interaction.objects.count() == 4


def test_a_partly_replayed_batch_stores_only_the_new_items(api):
    api.post(URL, {"items": items(2)})
    response = api.post(URL, {"items": items(5)})
    assert response.json()["created"] == 3
    assert response.json()["replayed"] == 2
    assert Interaction.objects.count() == 5


def test_a_known_key_with_a_different_body_fails_the_batch_with_409(api):
    api.post(URL, {"items": items(2)})
    changed = items(4)
    changed[1]["output_text"] = "changed"
    response = api.post(URL, {"items": changed})
    assert response.status_code == 409
    assert "1" in response.json()["errors"]
    assert Interaction.objects.count() == 2


def test_duplicate_keys_inside_one_batch_are_rejected(api):
    batch = items(3)
    batch[2]["idempotency_key"] = "k0"
    response = api.post(URL, {"items": batch})
    assert response.status_code == 400
    assert "idempotency_key" in response.json()["errors"]["2"]


@override_settings(BATCH_MAX_ITEMS=3)
def test_a_batch_over_the_limit_is_refused(api):
    response = api.post(URL, {"items": items(4)})
    assert response.status_code == 400
    assert "at most 3" in response.json()["detail"]


@pytest.mark.parametrize("body", [{"items": []}, {"items": {}}, {}, {"items": [], "more": 1}, []])
def test_a_malformed_batch_envelope_is_refused(api, body):
    assert api.post(URL, body).status_code == 400


def test_opted_out_subjects_in_a_batch_are_counted_not_stored(api):
    api.post("/api/v1/subjects/u1/opt-out")
    response = api.post(URL, {"items": items(6)})
    assert response.json()["not_stored"] == 2
    assert Interaction.objects.count() == 4
    assert Subject.objects.get(opted_out=True).suppressed_interactions == 2
