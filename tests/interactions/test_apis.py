from __future__ import annotations

import uuid

import pytest
from django.test import override_settings

from interactions.models import Candidate, ClientContext, Interaction

pytestmark = pytest.mark.django_db

URL = "/api/v1/interactions"


def payload(**overrides):
    body = {
        "task": "support",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "How do I reset my password?"}],
        "output_text": "Open Settings, then Security, then Reset.",
        "model_version": "tiny-support-v1",
        "tokens_input": 12,
        "tokens_output": 9,
        "latency_ms": 230,
        "confidence": 0.82,
        "outcome": "success",
        "user_id": "user-42",
        "session_id": "s-1",
        "metadata": {"app": "web"},
    }
    body.update(overrides)
    return body


def test_it_records_an_interaction_and_derives_input_text_and_total_tokens(api):
    response = api.post(URL, payload(client_context={"ip_address": "203.0.113.9", "user_agent": "Mozilla/5.0"}))
    assert response.status_code == 201, response.json()
    assert response.json()["status"] == "created"
    assert "output_text" not in response.json(), "a POST answer does not echo the texts back"
    body = api.get(f"{URL}/{response.json()['id']}").json()
    assert body["input_text"] == "How do I reset my password?"
    assert body["tokens_total"] == 21
    assert body["subject"]
    assert body["subject"] != "user-42"
    interaction = Interaction.objects.get(pk=body["id"])
    assert interaction.client == api.client_obj
    assert ClientContext.objects.get(interaction=interaction).ip_address == "203.0.113.9"
    assert "client_context" not in body
    assert "ip_address" not in str(body)


def test_it_derives_messages_from_input_text(api):
    response = api.post(URL, {"input_text": "2+2?", "output_text": "4"})
    assert response.status_code == 201
    detail = api.get(f"{URL}/{response.json()['id']}").json()
    assert detail["messages"] == [{"role": "user", "content": "2+2?"}]
    assert detail["task"] == "default"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"output_text": "no input"}, "messages"),
        (payload(surprise=1), "surprise"),
        (payload(confidence=1.5), "confidence"),
        (payload(tokens_input=-1), "tokens_input"),
        (payload(tokens_input=True), "tokens_input"),
        (payload(outcome="great"), "outcome"),
        (payload(task="Bad Task"), "task"),
        (payload(messages=[{"role": "wizard", "content": "x"}]), "messages"),
        (payload(messages=[{"role": "user", "content": "x", "extra": 1}]), "messages"),
        (payload(metadata=["not", "an", "object"]), "metadata"),
        (payload(tokens_total=3), "tokens_total"),
        (payload(candidates=[{"text": "a", "rank": 0}, {"text": "b", "rank": 0}]), "candidates"),
        (payload(client_context={"ip_address": "999.1.1.1"}), "client_context"),
        (payload(user_id=""), "user_id"),
    ],
)
def test_it_rejects_bad_input_with_the_field_message_and_stores_nothing(api, body, field):
    response = api.post(URL, body)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not Interaction.objects.exists()


@override_settings(MAX_TEXT_BYTES=100, MAX_METADATA_BYTES=50)
def test_it_enforces_text_and_metadata_limits(api):
    assert api.post(URL, payload(output_text="é" * 51)).json()["errors"]["output_text"] == ["At most 100 bytes."]
    assert "metadata" in api.post(URL, payload(metadata={"k": "v" * 60})).json()["errors"]
    assert "messages" in api.post(URL, payload(messages=[{"role": "user", "content": "x" * 101}])).json()["errors"]
    assert api.post(URL, payload(output_text="é" * 50)).status_code == 201
    assert Interaction.objects.count() == 1


@override_settings(MAX_REQUEST_BYTES=2000)
def test_a_body_over_the_request_limit_answers_413(api):
    response = api.post(URL, payload(output_text="x" * 3000))
    assert response.status_code == 413
    assert "limit is 2000" in response.json()["detail"]
    assert not Interaction.objects.exists()


def test_a_replay_with_the_same_idempotency_key_returns_the_original(api):
    first = api.post(URL, payload(), HTTP_IDEMPOTENCY_KEY="abc")
    again = api.post(URL, payload(), HTTP_IDEMPOTENCY_KEY="abc")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["created_at"] == again.json()["created_at"]
    assert again.json()["status"] == "replayed"
    assert Interaction.objects.count() == 1


def test_the_same_key_with_a_different_body_answers_409(api):
    api.post(URL, payload(), HTTP_IDEMPOTENCY_KEY="abc")
    response = api.post(URL, payload(output_text="something else"), HTTP_IDEMPOTENCY_KEY="abc")
    assert response.status_code == 409
    assert "idempotency_key" in response.json()["errors"]
    assert Interaction.objects.count() == 1


def test_idempotency_keys_are_scoped_per_client(make_api):
    one, two = make_api(), make_api()
    assert one.post(URL, payload(), HTTP_IDEMPOTENCY_KEY="same").status_code == 201
    assert two.post(URL, payload(output_text="other"), HTTP_IDEMPOTENCY_KEY="same").status_code == 201


def test_candidates_are_stored_with_the_interaction(api):
    created = api.post(URL, payload(candidates=[{"text": "A", "confidence": 0.7}, {"text": "B"}])).json()
    body = api.get(f"{URL}/{created['id']}").json()
    assert [(c["rank"], c["text"]) for c in body["candidates"]] == [(0, "A"), (1, "B")]
    assert Candidate.objects.count() == 2


def test_it_lists_with_filters_and_cursor_pagination(api):
    for index in range(5):
        api.post(URL, payload(task="support" if index % 2 else "billing", user_id=f"u{index % 2}"))
    page = api.get(URL, {"page_size": 2})
    assert page.status_code == 200
    assert len(page.json()["results"]) == 2
    rest = api.get(page.json()["next"])
    assert len(rest.json()["results"]) == 2
    assert {r["task"] for r in api.get(URL, {"task": "support"}).json()["results"]} == {"support"}
    assert len(api.get(URL, {"user_id": "u1"}).json()["results"]) == 2
    interaction_id = api.get(URL).json()["results"][0]["id"]
    api.post(f"{URL}/{interaction_id}/feedback", {"kind": "thumb", "thumb": "up"})
    assert [r["id"] for r in api.get(URL, {"has_feedback": "true"}).json()["results"]] == [interaction_id]
    assert len(api.get(URL, {"has_feedback": "false"}).json()["results"]) == 4
    assert api.get(URL, {"created_after": "not-a-date"}).status_code == 400
    assert len(api.get(URL, {"created_after": "2000-01-01T00:00:00Z"}).json()["results"]) == 5


def test_it_shows_one_interaction(api):
    created = api.post(URL, payload()).json()
    response = api.get(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert response.json()["output_text"] == payload()["output_text"]
    assert api.get(f"{URL}/{uuid.uuid4()}").status_code == 404
    assert api.get(f"{URL}/not-a-uuid").status_code == 404


def test_a_client_cannot_see_or_touch_another_clients_data(make_api):
    owner, other = make_api(), make_api()
    created = owner.post(URL, payload()).json()
    assert other.get(f"{URL}/{created['id']}").status_code == 404
    assert other.post(f"{URL}/{created['id']}/feedback", {"kind": "score", "score": 5}).status_code == 404
    assert other.get(URL).json()["results"] == []
    assert other.get("/api/v1/subjects/user-42/export").status_code == 404
    assert other.delete("/api/v1/subjects/user-42").status_code == 404
    assert Interaction.objects.count() == 1


def test_scopes_are_enforced(make_api):
    reader = make_api(scopes=("read",))
    assert reader.post(URL, payload()).status_code == 403
    assert reader.get(URL).status_code == 200
    writer = make_api(scopes=("ingest",))
    assert writer.get(URL).status_code == 403
    assert writer.delete("/api/v1/subjects/user-42").status_code == 403
    assert not Interaction.objects.exists()


def test_requests_without_a_valid_active_key_are_refused(api, client):
    assert client.post(URL, payload(), content_type="application/json").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Bearer lp_wrong").status_code == 401
    assert client.get(URL, HTTP_AUTHORIZATION="Token abc").status_code == 401
    api.client_obj.is_active = False
    api.client_obj.save()
    assert api.get(URL).status_code == 401


@override_settings(API_THROTTLE_READ=["2/min"])
def test_throttling_applies_per_client(make_api):
    from django.core.cache import cache

    cache.clear()
    one, two = make_api(), make_api()
    assert [one.get(URL).status_code for _ in range(3)] == [200, 200, 429]
    assert two.get(URL).status_code == 200


def test_listing_costs_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    for index in range(20):
        created = api.post(URL, payload(user_id=f"u{index}", candidates=[{"text": "a"}, {"text": "b"}])).json()
        api.post(f"{URL}/{created['id']}/feedback", {"kind": "choice", "candidate_rank": 1})
    with django_assert_max_num_queries(6):
        assert len(api.get(URL).json()["results"]) == 20
