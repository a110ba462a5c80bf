"""Serving on the tiny model: generate, OpenAI-compatible chat completions (with the official
client against a live server), logging, candidates, and a hot swap under a loop of requests."""

from __future__ import annotations

import threading

import pytest

from interactions.models import Candidate, Interaction
from registry import services
from registry.models import ModelVersion
from tests.factories import InteractionFactory
from tests.training.conftest import sft_dataset
from training import runner
from training import services as training

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def test_generate_answers_with_the_champion_and_logs_the_interaction(training_settings, make_api):
    InteractionFactory(task="commands")  # a task the platform has data for starts on its base model
    api = make_api(scopes=("ingest",))
    response = api.post(
        "/api/v1/generate",
        {"task": "commands", "input_text": "create file 3", "max_tokens": 8, "n": 2, "temperature": 0.7, "user_id": "u1"},
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["version"] == "tiny-llama-commands-v0"
    assert len(body["texts"]) == 2
    interaction = Interaction.objects.get(pk=body["interaction_id"])
    assert (interaction.model_version, interaction.task) == ("tiny-llama-commands-v0", "commands")
    assert interaction.tokens_input == body["usage"]["prompt_tokens"]
    assert Candidate.objects.filter(interaction=interaction).count() == 2
    assert api.post("/api/v1/generate", {"task": "commands"}).status_code == 400
    assert api.post("/api/v1/generate", {"task": "commands", "input_text": "x", "max_tokens": 100000}).status_code == 400


def test_few_shot_lessons_that_would_overflow_the_models_window_are_left_out_least_similar_first(
    training_settings, make_api, django_capture_on_commit_callbacks
):
    """The tiny model reads 512 positions: three long lessons and the request do not fit, so the
    least similar lessons go and the prompt sent fits; short lessons all go in."""
    from curation.models import Lesson
    from registry.serving import prompt_fits
    from registry.serving.local import backend

    backend.cache_clear()
    InteractionFactory(task="commands")
    api = make_api()
    body = {"recall_enabled": False, "few_shot_k": 3, "few_shot_min_similarity": -1}
    assert api.put("/api/v1/lessons/settings/commands", body, format="json").status_code == 200

    def lesson(text: str, correction: str) -> int:
        answer = api.post("/api/v1/generate", {"task": "commands", "input_text": text, "max_tokens": 4}, format="json").json()
        with django_capture_on_commit_callbacks(execute=True):
            url = f"/api/v1/interactions/{answer['interaction_id']}/feedback"
            assert api.post(url, {"kind": "correction", "correction": correction}, format="json").status_code == 201
        return Lesson.objects.get(source_interaction_id=answer["interaction_id"]).pk

    def used(text: str, max_tokens: int) -> list[int]:
        answer = api.post("/api/v1/generate", {"task": "commands", "input_text": text, "max_tokens": max_tokens}, format="json")
        assert answer.status_code == 200, answer.content
        return Interaction.objects.get(pk=answer.json()["interaction_id"]).metadata["lessons"]["used"]

    short = [lesson(f"open file {n}", f'{{"action": "open", "id": {n}}}') for n in (1, 2, 3)]
    assert sorted(used("open file 4", 16)) == sorted(short), "three short lessons fit"
    Lesson.objects.all().delete()
    long_lessons = [lesson(f"open file {n} " + "please " * 60, " ".join(["open"] * 150)) for n in (5, 6, 7)]
    sent = used("open file 8 " + "please " * 60, 64)
    assert 0 < len(sent) < 3, sent
    assert set(sent) <= set(long_lessons)
    version = ModelVersion.objects.get(name="tiny-llama-commands-v0")
    assert prompt_fits(version=version, messages=[{"role": "user", "content": "open file 8"}], max_tokens=64)
    assert not prompt_fits(version=version, messages=[{"role": "user", "content": "please " * 600}], max_tokens=64)


def test_a_version_name_that_now_stands_for_other_weights_is_loaded_again(training_settings, base_model_dir, tmp_path):
    """The backend keeps adapters by version name: a name whose adapter path changed (a rebuilt
    database, two bases of one name) must not keep answering with the old weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from registry.serving.local import LocalBackend

    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        config = LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False)
        get_peft_model(AutoModelForCausalLM.from_pretrained(base_model_dir), config).save_pretrained(tmp_path / f"a{seed}")
        paths.append(str(tmp_path / f"a{seed}"))
    backend = LocalBackend()
    version = ModelVersion(task="t", number=1, name="tiny-llama-t-v1", base_model=str(base_model_dir))

    def loaded_weight() -> torch.Tensor:
        layer = backend.model.base_model.model.model.layers[0].self_attn.q_proj
        return layer.lora_A[version.name].weight.detach().clone()

    version.adapter_path = paths[0]
    backend._use(version)
    first = loaded_weight()
    version.adapter_path = paths[1]
    backend._use(version)
    assert backend.adapters[version.name] == paths[1]
    assert not torch.equal(loaded_weight(), first), "the new weights answer"


@pytest.mark.django_db(transaction=True)
def test_the_openai_client_talks_to_chat_completions(training_settings, live_server, make_api):
    from openai import OpenAI

    InteractionFactory(task="commands")
    api = make_api(scopes=("ingest",))
    key = api.client_obj.raw_key
    client = OpenAI(base_url=f"{live_server.url}/v1", api_key=key)
    assert [m.id for m in client.models.list()] == [], "nothing has a champion yet"
    completion = client.chat.completions.create(
        model="commands", messages=[{"role": "user", "content": "open task 4"}], max_tokens=6, temperature=0
    )
    assert completion.model == "tiny-llama-commands-v0"
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    interaction_id = completion.model_extra["interaction_id"]
    assert Interaction.objects.get(pk=interaction_id).output_text == completion.choices[0].message.content
    chunks = list(client.chat.completions.create(model="commands", messages=[{"role": "user", "content": "hi"}], max_tokens=6, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert Interaction.objects.get(pk=chunks[0].model_extra["interaction_id"]).output_text == streamed
    several = client.chat.completions.create(
        model="tiny-llama-commands-v0", messages=[{"role": "user", "content": "hi"}], max_tokens=4, n=3, temperature=1
    )
    assert len(several.choices) == 3
    assert [m.id for m in client.models.list()] == ["commands", "tiny-llama-commands-v0"]
    client.close()


@pytest.mark.django_db(transaction=True)
def test_a_promotion_swaps_the_adapter_under_a_loop_of_requests_without_failures(training_settings, make_api):
    sft_dataset(count=24)
    job = runner.job_execute(job_id=training.job_create(task="commands", recipe={"epochs": 1}).pk)
    trained = ModelVersion.objects.get(training_job=job)
    api = make_api(scopes=("ingest",))
    first = api.post("/api/v1/generate", {"task": "commands", "input_text": "create file 1", "max_tokens": 4}).json()
    assert first["version"] == "tiny-llama-commands-v0"
    services.version_approve(version=trained, actor="test")
    answers, failures, stop, progress = [], [], threading.Event(), threading.Condition()

    def wait_for_answers(count: int) -> None:
        with progress:
            assert progress.wait_for(lambda: len(answers) >= count or failures, timeout=60)

    def loop() -> None:
        from django.db import connection
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {api.client_obj.raw_key}")
        try:
            while not stop.is_set():
                response = client.post(
                    "/api/v1/generate", {"task": "commands", "input_text": "delete note 5", "max_tokens": 4}, format="json"
                )
                with progress:
                    (answers if response.status_code == 200 else failures).append(response.json())
                    progress.notify_all()
        finally:
            connection.close()

    thread = threading.Thread(target=loop)
    thread.start()
    wait_for_answers(3)
    services.version_promote(version=trained, actor="test")
    wait_for_answers(len(answers) + 3)
    services.version_rollback(task="commands", actor="test")
    wait_for_answers(len(answers) + 2)  # requests started after the rollback
    stop.set()
    thread.join(60)
    assert failures == []
    versions = [a["version"] for a in answers]
    assert set(versions) == {"tiny-llama-commands-v0", trained.name}
    for answer in answers:
        assert Interaction.objects.get(pk=answer["interaction_id"]).model_version == answer["version"]
    assert versions[-1] == "tiny-llama-commands-v0", "the rollback reached the serving process"


@pytest.mark.django_db(transaction=True)
def test_the_remote_backend_serves_through_another_platform_over_http(training_settings, make_api, settings):
    """This platform's own /v1/chat/completions, started as a live server in another process,
    stands in for vLLM."""
    import os
    import signal
    import subprocess
    import sys

    from tests.test_run_platform import ROOT, _database_url, _free_port, _healthy, _wait_for

    InteractionFactory(task="commands")
    api = make_api(scopes=("ingest",))
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(), "DEBUG": "true", "BASE_MODEL": str(training_settings.BASE_MODEL),
           "ARTIFACTS_DIR": str(training_settings.ARTIFACTS_DIR), "HF_HUB_OFFLINE": "1", "SERVING_BACKEND": "local"}  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "learning_platform.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: _healthy(port), 30)
        settings.SERVING_BACKEND, settings.SERVING_REMOTE_URL = "remote", f"http://127.0.0.1:{port}/v1"
        settings.SERVING_REMOTE_API_KEY = api.client_obj.raw_key
        body = api.post(
            "/api/v1/generate", {"task": "commands", "input_text": "share event 2", "max_tokens": 5, "n": 2, "temperature": 1}
        ).json()
        assert body["version"] == "tiny-llama-commands-v0"
        assert len(body["texts"]) == 2
        assert Interaction.objects.filter(model_version="tiny-llama-commands-v0").count() == 2, "logged here and by the serving platform"
        settings.SERVING_REMOTE_URL = f"http://127.0.0.1:{_free_port()}/v1"
        unreachable = api.post("/api/v1/generate", {"task": "commands", "input_text": "x", "max_tokens": 2})
        assert unreachable.status_code == 409
        assert "unreachable" in unreachable.json()["detail"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)
