"""Input a client can send with an ingest key and that once answered 500: each is a 400 in the
platform's error shape ({"detail", "code", "errors"?}) and stores nothing."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from interactions.models import Candidate, Feedback, Interaction, Subject
from tests.interactions.test_apis import URL, payload

pytestmark = pytest.mark.django_db


def nested(depth: int) -> object:
    """A JSON value nested `depth` levels deep, objects and lists in turn."""
    value: object = 1
    for index in range(depth):
        value = {"k": value} if index % 2 else [value]
    return value


def with_nested(body: dict, field: str, depth: int) -> bytes:
    """The JSON text of body with `field` nested `depth` levels (deeper than Python's json writes)."""
    opening = "".join('{"k":' if index % 2 else "[" for index in reversed(range(depth)))
    closing = "".join("}" if index % 2 else "]" for index in range(depth))
    text = json.dumps({**body, field: "__nested__"}).replace('"__nested__"', opening + "1" + closing)
    return text.encode()


def assert_refused(response, status: int = 400) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert isinstance(body["code"], str)
    assert set(body) <= {"detail", "code", "errors"}
    return body


def assert_nothing_stored() -> None:
    assert not Interaction.objects.exists()
    assert not Feedback.objects.exists()


@pytest.fixture
def raw(api):
    """The API client, answering a 500 as a response instead of raising it in the test."""
    api.raise_request_exception = False
    return api


CONTROL_TEXTS = ["nul \x00 here", "bell \x07", "escape \x1b[31m", "\x1f"]


@pytest.mark.parametrize("text", CONTROL_TEXTS)
@pytest.mark.parametrize(
    "build",
    [
        lambda t: payload(input_text=t),
        lambda t: payload(output_text=t),
        lambda t: payload(reasoning=t),
        lambda t: payload(model_version=t),
        lambda t: payload(session_id=t),
        lambda t: payload(user_id=t),
        lambda t: payload(language=t),
        lambda t: payload(target_tool=t),
        lambda t: payload(idempotency_key=t),
        lambda t: payload(task=t),
        lambda t: payload(messages=[{"role": "user", "content": t}]),
        lambda t: payload(candidates=[{"text": t}]),
        lambda t: payload(client_context={"user_agent": t}),
        lambda t: payload(metadata={"k": t}),
        lambda t: payload(metadata={t: 1}),
        lambda t: payload(structured_prompt=[{"deep": [t]}]),
        lambda t: payload(context_used={"docs": [{t: "x"}]}),
    ],
    ids=lambda b: "",
)
def test_a_control_character_in_any_text_is_refused(raw, build, text):
    assert_refused(raw.post(URL, build(text)))
    assert_refused(raw.post(f"{URL}/batch", {"items": [payload(), build(text)]}))
    assert_nothing_stored()
    assert not Subject.objects.exists()


def test_tabs_and_newlines_are_ordinary_text(api):
    created = api.post(URL, payload(output_text="a\tb\nc\r\n", metadata={"k": "x\ny"}))
    assert created.status_code == 201, created.json()
    assert Interaction.objects.get().output_text == "a\tb\nc\r\n"


@pytest.mark.parametrize("field", ["metadata", "structured_prompt", "context_used"])
@pytest.mark.parametrize("depth", [32, 255, 600, 1024])
def test_json_nested_past_the_limit_is_refused(raw, field, depth):
    body = assert_refused(raw.post(URL, with_nested(payload(), field, depth), content_type="application/json"))
    assert "MAX_JSON_DEPTH" in body["detail"]
    if depth < 1024:  # past 1024 levels the parser stops before it knows where
        assert next(iter(body["errors"])).startswith(field)
    nested_item = with_nested(payload(), field, depth).decode()
    assert_refused(raw.post(f"{URL}/batch", f'{{"items": [{nested_item}]}}', content_type="application/json"))
    assert_nothing_stored()


def test_json_nested_within_the_limit_is_stored(api):
    body = with_nested(payload(), "metadata", 30)
    assert api.post(URL, body, content_type="application/json").status_code == 201
    assert Interaction.objects.get().metadata["k"]


def test_json_nested_past_what_the_parser_allows_is_a_400(raw):
    body = b'{"metadata": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_refused(raw.post(URL, body, content_type="application/json"))
    assert_nothing_stored()


@pytest.mark.parametrize(
    "overrides",
    [
        {"outcome": {}},
        {"outcome": []},
        {"outcome": 1},
        {"task": {}},
        {"task": ["a"]},
        {"messages": [{"role": {}, "content": "x"}]},
        {"messages": [{"role": ["user"], "content": "x"}]},
        {"messages": {"role": "user"}},
        {"messages": "hello"},
        {"candidates": [{"text": "a", "rank": {}}]},
        {"candidates": [{"text": "a", "confidence": {}}]},
        {"candidates": {"text": "a"}},
        {"client_context": {"ip_address": {}}},
        {"client_context": {"ip_address": 12}},
        {"client_context": {"user_agent": []}},
        {"client_context": []},
        {"tokens_input": 10**30},
        {"tokens_input": 1.5},
        {"confidence": "0.5"},
        {"latency_ms": {}},
        {"user_id": 5},
        {"user_id": {}},
        {"idempotency_key": []},
        {"metadata": "x"},
    ],
    ids=repr,
)
def test_a_value_of_the_wrong_type_is_refused(raw, overrides):
    assert_refused(raw.post(URL, payload(**overrides)))
    assert_refused(raw.post(f"{URL}/batch", {"items": [payload(**overrides)]}))
    assert_nothing_stored()


@pytest.mark.parametrize("items", [[1], ["x"], [[]], [None], {}, None, "x", 1])
def test_a_batch_of_non_objects_is_refused(raw, items):
    assert_refused(raw.post(f"{URL}/batch", {"items": items}))
    assert_nothing_stored()


@pytest.mark.parametrize("body", [b"[]", b"1", b'"x"', b"null", b"{", b"\xff\xfe", b'{"a": NaN}'])
def test_a_body_that_is_not_an_object_is_refused(raw, body):
    assert_refused(raw.post(URL, body, content_type="application/json"))
    assert_nothing_stored()


@pytest.mark.parametrize("key", ["k" * 201, "k" * 5000, "a\x01b", "a\x00b", "tab\tinside"])
def test_a_bad_idempotency_key_header_is_refused(raw, key):
    body = assert_refused(raw.post(URL, payload(), HTTP_IDEMPOTENCY_KEY=key))
    assert "idempotency_key" in body["errors"]
    assert_nothing_stored()


def test_an_idempotency_key_of_200_characters_is_accepted(api):
    assert api.post(URL, payload(), HTTP_IDEMPOTENCY_KEY="k" * 200).status_code == 201


@pytest.fixture
def interaction_id(api):
    created = api.post(URL, payload(candidates=[{"text": "A"}, {"text": "B"}]))
    assert created.status_code == 201
    return created.json()["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "score", "score": 5, "source": {}},
        {"kind": "score", "score": 5, "source": []},
        {"kind": []},
        {"kind": {}},
        {"kind": None},
        {"kind": "thumb", "thumb": {}},
        {"kind": "thumb", "thumb": []},
        {"kind": "score", "score": 2**70},
        {"kind": "score", "score": "5"},
        {"kind": "correction", "correction": "nul \x00"},
        {"kind": "correction", "correction": "\x1b"},
        {"kind": "correction", "correction": {}},
        {"kind": "flag", "reason": "nul \x00"},
        {"kind": "score", "score": 4, "reason": "\x00"},
        {"kind": "choice", "candidate_rank": 2**62},
        {"kind": "choice", "candidate_rank": 2**70},
        {"kind": "choice", "candidate_rank": 40000},
        {"kind": "choice", "candidate_rank": -1},
        {"kind": "choice", "candidate_rank": {}},
        {"kind": "choice", "candidate_id": {}},
        {"kind": "choice", "candidate_id": 2**70},
        {"kind": "choice", "candidate_id": -3},
        {"kind": "choice", "candidate_id": "x"},
        {"kind": "choice", "candidate_rank": 0, "candidate_id": 1},
        {"kind": "choice"},
        {"kind": "score", "score": 5, "candidate_id": 1},
        {"\x00": 1, "kind": "score", "score": 5},
    ],
    ids=repr,
)
def test_hostile_feedback_is_refused(raw, interaction_id, body):
    assert_refused(raw.post(f"{URL}/{interaction_id}/feedback", body))
    assert not Feedback.objects.exists()
    assert not Candidate.objects.filter(is_chosen=True).exists()


@pytest.mark.parametrize(
    "query",
    [
        "task=%00",
        "task=a%00b",
        "model_version=%01",
        "user_id=%00",
        "created_after=%00",
        "has_feedback=%00",
        "page_size=%00",
        "cursor=%00",
        "%00=1",
    ],
)
@pytest.mark.parametrize(
    "path",
    ["/api/v1/interactions", "/api/v1/datasets", "/api/v1/models", "/api/v1/models/events", "/api/v1/experiments"],
)
def test_a_control_character_in_a_query_parameter_is_refused(raw, path, query):
    assert_refused(raw.get(f"{path}?{query}"))


def test_a_control_character_in_an_api_path_is_refused(raw):
    assert_refused(raw.post("/api/v1/subjects/a%00b/opt-out"))
    assert_refused(raw.get("/api/v1/subjects/a%00b/export"))
    assert not Subject.objects.exists()


def test_a_form_body_is_refused_in_the_error_shape(raw):
    assert_refused(raw.post(URL, {"task": "x"}, format="multipart"), status=415)


def test_authentication_failures_answer_the_error_shape():
    anonymous = APIClient()
    assert assert_refused(anonymous.get(URL), status=401)["code"] == "not_authenticated"
    assert assert_refused(anonymous.get(URL, HTTP_AUTHORIZATION="Bearer \x00"), status=401)
