"""The serving doors without a model: what may be asked for (GET /v1/models), what is refused
(unknown tasks and models, tainted or retired versions, hostile bodies) and that a refusal
stores nothing; generation through the remote backend against a real HTTP stand-in."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from interactions.models import Interaction
from registry import services
from registry.models import ActiveModel, LifecycleEvent, ModelVersion
from tests.factories import InteractionFactory
from tests.registry.test_lifecycle import fake_version

pytestmark = pytest.mark.django_db
HI = [{"role": "user", "content": "hi"}]


def chat(api, **body):
    return api.post("/v1/chat/completions", {"model": "support", "messages": HI, **body}, format="json")


def assert_openai_error(response, status: int, param: str | None, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert {"message", "type", "param", "code"} <= set(error)
    assert error["type"] == "invalid_request_error"
    assert error["message"]
    assert _path(error["param"]) == _path(param), error  # the JSON parser names messages[0] messages.0
    if code is not None:
        assert error["code"] == code
    return error


def _path(param: str | None) -> str | None:
    return param.replace("[", ".").replace("]", "") if param else param


def assert_nothing_stored() -> None:
    assert not Interaction.objects.exists()
    assert not ModelVersion.objects.exists()
    assert not ActiveModel.objects.exists()
    assert not LifecycleEvent.objects.exists()


@pytest.fixture
def ingest(make_api):
    return make_api(scopes=("ingest",))


def answer(index: int, mode: str = "ok") -> dict:
    text = "\x1b[31mansw\x00er\x07 {}" if mode == "control" else "answer {}"
    return {"index": index, "message": {"role": "assistant", "content": text.format(index)}}


@pytest.fixture
def stub(settings):
    """A real OpenAI-compatible HTTP server standing in for vLLM; `state["mode"]` says how it answers."""
    state = {"mode": "ok", "seen": []}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen = {"path": self.path, "body": body, "authorization": self.headers.get("Authorization")}
            state["seen"].append(seen)
            choices = [answer(i, state["mode"]) for i in range(body["n"])]
            usage = {"prompt_tokens": 3, "completion_tokens": 4 * body["n"]}
            answers = {
                "ok": (200, json.dumps({"choices": choices, "usage": usage})),
                "control": (200, json.dumps({"choices": choices, "usage": usage})),
                "error": (500, "the GPU is on fire"),
                "garbage": (200, "<html>not json</html>"),
                "empty": (200, json.dumps({"choices": []})),
            }
            status, text = answers[state["mode"]]
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(text.encode())

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.SERVING_BACKEND, settings.SERVING_REMOTE_API_KEY = "remote", "remote-key"
    settings.SERVING_REMOTE_URL = f"http://127.0.0.1:{server.server_port}/v1"
    settings.BASE_MODEL = "org/base-model"  # a name: the remote server has it, nothing is loaded here
    yield state
    server.shutdown()


@pytest.mark.parametrize("model", ["no-such-task", "Not A Task!", "x" * 200, "base-support-v9"])
def test_an_unknown_model_is_a_404_in_openai_shape_and_stores_nothing(ingest, model):
    error = assert_openai_error(chat(ingest, model=model), 404, "model", "model_not_found")
    assert model[:50] in error["message"]
    assert_nothing_stored()


def test_an_unknown_task_on_generate_is_a_404_in_the_platform_shape_and_stores_nothing(ingest):
    response = ingest.post("/api/v1/generate", {"task": "nothing-here", "input_text": "hi"}, format="json")
    assert response.status_code == 404
    body = response.json()
    assert (body["code"], list(body["errors"])) == ("not_found", ["task"])
    assert "nothing-here" in body["detail"]
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": None}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": "a\x00b"}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": {"text": "hi"}}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content"),  # parts
        ({"messages": [*HI, {"role": "robot", "content": "beep"}]}, "messages[1].role"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"model": "x" * 300}, "model"),
        ({"model": 5}, "model"),
        ({"model": ["support"]}, "model"),
        ({"model": "sup\x00port"}, "model"),
        ({"n": 0}, "n"),
        ({"n": 9}, "n"),
        ({"n": "2"}, "n"),
        ({"n": True}, "n"),
        ({"n": 1.5}, "n"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 10**6}, "max_tokens"),
        ({"max_tokens": 2**62}, "max_tokens"),
        ({"max_tokens": "8"}, "max_tokens"),
        ({"max_completion_tokens": -1}, "max_completion_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": 1e308}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"temperature": False}, "temperature"),
        ({"stream": {}}, "stream"),
        ({"user": "u" * 300}, "user"),
        ({"user": 42}, "user"),
    ],
)
def test_a_hostile_chat_body_is_a_400_naming_the_field_and_stores_nothing(ingest, body, param):
    error = assert_openai_error(chat(ingest, **body), 400, param)
    assert error["code"] in {"invalid_value", "invalid"}
    assert_nothing_stored()


def test_the_size_limits_apply_to_chat_messages(ingest, settings):
    settings.MAX_TEXT_BYTES, settings.MAX_MESSAGES = 10, 2
    too_long = [{"role": "user", "content": "é" * 6}]  # 12 bytes
    assert_openai_error(chat(ingest, messages=too_long), 400, "messages[0].content")
    assert_openai_error(chat(ingest, messages=HI * 3), 400, "messages")
    assert_nothing_stored()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"input_text": ...}, "messages"),
        ({"input_text": 5}, "input_text"),
        ({"input_text": "a\x00b"}, "input_text"),
        ({"task": "t" * 65}, "task"),
        ({"task": "not a slug"}, "task"),
        ({"task": 7}, "task"),
        ({"n": 0}, "n"),
        ({"max_tokens": 100_000}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"capabilities": "code"}, "capabilities"),
        ({"capabilities": [5]}, "capabilities"),
        ({"capabilities": ["c"] * 33}, "capabilities"),
        ({"user_id": "u" * 257}, "user_id"),
    ],
)
def test_a_hostile_generate_body_is_a_400_in_the_platform_shape(ingest, body, field):
    body = {"task": "support", "input_text": "hi", **body}
    body = {key: value for key, value in body.items() if value is not ...}
    response = ingest.post("/api/v1/generate", body, format="json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "invalid"
    assert field in answer["errors"]
    assert_nothing_stored()


def test_openai_doors_answer_auth_failures_in_openai_shape(client, make_api):
    assert_openai_error(client.post("/v1/chat/completions", {}, content_type="application/json"), 401, None)
    reader = make_api(scopes=("read",))
    assert_openai_error(chat(reader), 403, None, "permission_denied")
    assert_openai_error(reader.get("/v1/models"), 403, None, "permission_denied")


def test_v1_models_lists_tasks_with_a_champion_and_their_servable_versions(ingest):
    v0 = fake_version("support", 0, status="approved")
    services.version_promote(version=v0, actor="test")
    fake_version("support", 1, status="approved")
    fake_version("support", 2, tainted=True, tainted_reason="erased")
    fake_version("support", 3, status="retired")
    fake_version("drafts", 1)  # no champion yet: not listed
    tainted_champion = fake_version("legal", 0, status="approved")
    services.version_promote(version=tainted_champion, actor="test")
    ModelVersion.objects.filter(pk=tainted_champion.pk).update(tainted=True)
    body = ingest.get("/v1/models").json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["support", "base-support-v0", "base-support-v1"]
    for model in body["data"]:
        assert set(model) == {"id", "object", "created", "owned_by"}
        assert model["object"] == "model"
        assert isinstance(model["created"], int)
        assert model["created"] > 1_700_000_000
    assert ingest.get("/v1/models/base-support-v1").json()["id"] == "base-support-v1"
    assert_openai_error(ingest.get("/v1/models/base-support-v2"), 404, "model", "model_not_found")


def test_a_tainted_or_retired_version_never_serves_and_nothing_is_stored(ingest, stub):
    champion = fake_version("support", 0, status="approved")
    services.version_promote(version=champion, actor="test")
    fake_version("support", 1, status="retired")
    fake_version("support", 2, tainted=True, tainted_reason="trained on erased data")
    assert_openai_error(chat(ingest, model="base-support-v1"), 404, "model", "model_not_found")
    tainted = assert_openai_error(chat(ingest, model="base-support-v2"), 409, "model")
    assert tainted["message"].startswith("base-support-v2 is tainted")
    ModelVersion.objects.filter(pk=champion.pk).update(tainted=True, tainted_reason="erased")
    assert_openai_error(chat(ingest), 409, "model")
    refused = ingest.post("/api/v1/generate", {"task": "support", "input_text": "hi"}, format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "conflict")
    assert stub["seen"] == [], "nothing was generated"
    assert not Interaction.objects.exists()


def test_a_task_with_data_but_no_champion_starts_on_its_base(ingest, stub):
    InteractionFactory(task="support")  # the platform has data for the task
    answer = ingest.post("/api/v1/generate", {"task": "support", "input_text": "hi", "n": 2}, format="json")
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert body["version"] == "base-model-support-v0"
    assert answer["X-Model-Version"] == "base-model-support-v0"
    assert body["texts"] == ["answer 0", "answer 1"]
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 8}
    assert ActiveModel.objects.get(task="support").version.name == "base-model-support-v0"
    assert list(LifecycleEvent.objects.values_list("action", flat=True)) == ["promote", "register"]
    assert Interaction.objects.get(pk=body["interaction_id"]).model_version == "base-model-support-v0"
    (seen,) = stub["seen"]
    assert seen["path"] == "/v1/chat/completions"
    assert (seen["body"]["model"], seen["body"]["n"]) == ("base-model-support-v0", 2)
    assert seen["authorization"] == "Bearer remote-key"


def test_chat_completions_through_the_remote_backend(ingest, stub):
    services.version_promote(version=fake_version("support", 0, status="approved"), actor="test")
    answer = chat(ingest, max_completion_tokens=7, temperature=0)
    assert answer.status_code == 200, answer.json()
    body = answer.json()
    assert (body["object"], body["model"], body["choices"][0]["message"]) == (
        "chat.completion",
        "base-support-v0",
        {"role": "assistant", "content": "answer 0"},
    )
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert (stub["seen"][0]["body"]["max_tokens"], stub["seen"][0]["body"]["temperature"]) == (7, 0)
    assert Interaction.objects.get(pk=body["interaction_id"]).output_text == "answer 0"


def test_control_characters_a_model_emits_are_neither_answered_nor_logged(ingest, stub):
    services.version_promote(version=fake_version("support", 0, status="approved"), actor="test")
    stub["mode"] = "control"
    body = chat(ingest, n=2).json()
    assert [c["message"]["content"] for c in body["choices"]] == ["[31manswer 0", "[31manswer 1"]
    assert Interaction.objects.get(pk=body["interaction_id"]).output_text == "[31manswer 0"


FAILURES = [("error", "answered 500"), ("garbage", "not JSON"), ("empty", "no choices")]


@pytest.mark.parametrize(("mode", "reason"), FAILURES)
def test_a_failing_remote_server_is_a_409_with_the_reason_and_stores_nothing(ingest, stub, mode, reason):
    services.version_promote(version=fake_version("support", 0, status="approved"), actor="test")
    stub["mode"] = mode
    refused = ingest.post("/api/v1/generate", {"task": "support", "input_text": "hi"}, format="json")
    assert refused.status_code == 409
    assert reason in refused.json()["detail"]
    assert_openai_error(chat(ingest), 409, None, "conflict")
    assert not Interaction.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_official_openai_client_lists_models_and_hears_model_not_found(live_server, make_api, stub):
    import openai

    services.version_promote(version=fake_version("support", 0, status="approved"), actor="test")
    key = make_api(scopes=("ingest",)).client_obj.raw_key
    with openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=key) as client:  # closed after: frees the db
        assert [m.id for m in client.models.list()] == ["support", "base-support-v0"]
        assert client.models.retrieve("support").owned_by == "learning_platform"
        completion = client.chat.completions.create(model="support", messages=HI, max_tokens=5)
        assert (completion.model, completion.choices[0].message.content) == ("base-support-v0", "answer 0")
        with pytest.raises(openai.NotFoundError) as refused:
            client.chat.completions.create(model="no-such-task", messages=HI)
        assert refused.value.code == "model_not_found"
        assert refused.value.param == "model"
        with pytest.raises(openai.BadRequestError) as invalid:
            client.chat.completions.create(model="support", messages=[])
        assert invalid.value.param == "messages"
    assert not ModelVersion.objects.filter(task="no-such-task").exists()
