"""The local backend batches concurrent requests for one version into one `generate`, answers each
as if it had been alone, and refuses with 503 when its queue is full."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from registry.models import ModelVersion
from registry.serving.local import LocalBackend, ServingBusy, torch_threads

pytestmark = pytest.mark.slow
PROMPTS = [f"{verb} file {n}" for verb in ("create", "delete", "open", "share") for n in range(1, 5)]


def base_version(base_model_dir) -> ModelVersion:
    return ModelVersion(name="tiny-llama-commands-v0", task="commands", base_model=str(base_model_dir), number=0)


def ask(backend: LocalBackend, version: ModelVersion, prompt: str, max_tokens: int = 12) -> tuple[list[str], int, list[int]]:
    return backend.generate(version, [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0, n=1)


def test_concurrent_requests_share_one_generate_and_get_what_they_would_alone(base_model_dir):
    version = base_version(base_model_dir)
    alone = LocalBackend(wait_ms=0)
    expected = [ask(alone, version, p, max_tokens=4 + i % 9) for i, p in enumerate(PROMPTS)]
    assert alone.batches == [1] * len(PROMPTS)

    batched = LocalBackend(wait_ms=200, max_batch=16)
    ask(batched, version, "warm up")  # load the model before the clients race
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        answers = list(pool.map(lambda ip: ask(batched, version, ip[1], max_tokens=4 + ip[0] % 9), enumerate(PROMPTS)))

    assert answers == expected
    assert max(batched.batches[1:]) > 4, batched.batches  # most of the 16 shared a generate
    assert sum(batched.batches[1:]) == len(PROMPTS)


def test_a_full_queue_answers_busy_at_once(base_model_dir):
    version = base_version(base_model_dir)
    backend = LocalBackend(queue_size=1, wait_ms=0, max_batch=1)
    ask(backend, version, "warm up")
    results: dict[str, object] = {}

    def long_request(name: str) -> None:
        try:
            results[name] = ask(backend, version, "create file 1", max_tokens=400)
        except ServingBusy as exc:
            results[name] = exc

    first = threading.Thread(target=long_request, args=("first",))
    first.start()
    assert backend.busy.wait(30)  # the first is generating; the queue is empty again
    second = threading.Thread(target=long_request, args=("second",))
    second.start()
    while backend.queue.qsize() < 1 and second.is_alive():
        pass  # the second is waiting in the queue (no sleep: it is there within microseconds)
    with pytest.raises(ServingBusy, match="busy"):
        ask(backend, version, "a third one")
    first.join(60)
    second.join(60)
    assert not isinstance(results["first"], ServingBusy)
    assert not isinstance(results["second"], ServingBusy)


def test_torch_threads_share_the_cores_among_the_processes_of_a_host(settings):
    settings.SERVING_TORCH_THREADS = 0
    settings.SERVING_PROCESSES_PER_HOST = 1
    cores = torch_threads()
    settings.SERVING_PROCESSES_PER_HOST = 64
    assert torch_threads() == max(1, cores // 64)
    settings.SERVING_TORCH_THREADS = 3
    assert torch_threads() == 3


@pytest.mark.django_db(transaction=True)
def test_a_busy_model_answers_503_with_the_json_error_through_the_api(training_settings, make_api):
    from registry.serving import local

    training_settings.SERVING_QUEUE_SIZE, training_settings.SERVING_MAX_BATCH = 1, 1
    local.backend.cache_clear()  # the process's backend, made anew with a queue of one
    api = make_api(scopes=("ingest",))
    api.post("/api/v1/interactions", {"task": "commands", "input_text": "a task the platform knows"}, format="json")
    assert api.post("/api/v1/generate", {"task": "commands", "input_text": "warm up", "max_tokens": 2}).status_code == 200
    codes: list[int] = []

    def slow() -> None:
        try:
            answer = api.post("/api/v1/generate", {"task": "commands", "input_text": "create file 1", "max_tokens": 400})
            codes.append(answer.status_code)
        finally:
            connection.close()

    try:
        first = threading.Thread(target=slow)
        first.start()
        assert local.backend().busy.wait(30)
        second = threading.Thread(target=slow)
        second.start()
        while local.backend().queue.qsize() < 1 and second.is_alive():
            pass
        response = api.post("/api/v1/generate", {"task": "commands", "input_text": "a third", "max_tokens": 2})
        first.join(60)
        second.join(60)
    finally:
        local.backend.cache_clear()
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "unavailable"
    assert codes == [200, 200]
