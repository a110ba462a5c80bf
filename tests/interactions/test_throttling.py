"""Throttling per API client: a burst and a sustained window per scope, generation counted in
tokens asked (n x max_tokens), 429 with Retry-After in each API's error shape, on by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import override_settings

from interactions import throttling
from interactions.models import Interaction
from interactions.throttling import wait_seconds
from tests.interactions.test_apis import URL, payload

ROOT = Path(__file__).resolve().parents[2]
T0 = 6000.0  # a whole minute: both windows start here
CHAT = "/v1/chat/completions"


REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/12",  # its own database: tests/test_door.py flushes 11
    }
}


@pytest.fixture(params=["local memory", "redis"])
def clock(request, monkeypatch, settings):
    """The throttle's clock, moved by hand (the windows are seconds and minutes long), over the
    default local-memory cache and over Redis (the pipelined path every process shares)."""
    if request.param == "redis":
        settings.CACHES = REDIS
    now = [T0]
    monkeypatch.setattr(throttling, "clock", lambda: now[0])
    cache.clear()
    yield now
    cache.clear()


def test_the_sliding_window_waits_exactly_until_the_cost_fits():
    assert wait_seconds(limit=3, window=60, previous=0, current=2, cost=1, elapsed=10) == 0
    # full now: after the rollover the 3 count as the previous window, weighted down to 2 by 20 s in
    assert wait_seconds(limit=3, window=60, previous=0, current=3, cost=1, elapsed=30) == pytest.approx(50)
    # the previous window's 4 must fall to 1 (a quarter of the window still inside it)
    assert wait_seconds(limit=3, window=60, previous=4, current=1, cost=1, elapsed=15) == pytest.approx(30)
    assert wait_seconds(limit=3, window=60, previous=4, current=1, cost=1, elapsed=45) == 0


def test_throttling_is_on_by_default_with_a_rate_for_every_scope():
    env = {k: v for k, v in os.environ.items() if not k.startswith("API_THROTTLE_")}
    code = (
        "import json; from learning_platform import settings as s; print(json.dumps([s.API_THROTTLE_INGEST, "
        "s.API_THROTTLE_READ, s.API_THROTTLE_ADMIN, s.API_THROTTLE_GENERATION_TOKENS]))"
    )
    env.update(DEBUG="true", DJANGO_SETTINGS_MODULE="learning_platform.settings")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    ingest, read, admin, tokens = json.loads(done.stdout)
    assert (ingest, read, admin, tokens) == (
        ["100/s", "3000/min"],
        ["20/s", "600/min"],
        ["5/s", "120/min"],
        ["4096/s", "32768/min"],
    )


@pytest.mark.django_db
@override_settings(API_THROTTLE_INGEST=["2/s", "3/min"])
def test_a_burst_passes_then_the_sustained_rate_holds_and_retry_after_is_exact(make_api, clock):
    api = make_api()
    assert [api.post(URL, payload()).status_code for _ in range(2)] == [201, 201]
    refused = api.post(URL, payload())
    assert refused.status_code == 429
    assert refused["Retry-After"] == "2"
    assert refused.json() == {
        "detail": "Over this API key's rate of 2/s ingest requests. Expected available in 2 seconds.",
        "code": "throttled",
    }
    clock[0] = T0 + 30  # the burst has passed; one more fits the minute
    assert api.post(URL, payload()).status_code == 201
    over = api.post(URL, payload())
    assert (over.status_code, over["Retry-After"]) == (429, "50")
    assert "3/min" in over.json()["detail"]
    clock[0] = T0 + 79
    assert api.post(URL, payload()).status_code == 429
    clock[0] = T0 + 80
    assert api.post(URL, payload()).status_code == 201
    assert Interaction.objects.count() == 4, "refused requests store nothing"


@pytest.mark.django_db
@override_settings(API_THROTTLE_READ=["2/min"], API_THROTTLE_INGEST=["3/min"])
def test_scopes_and_clients_have_budgets_of_their_own_and_refusals_cost_nothing(make_api, clock):
    one, two = make_api(), make_api()
    assert [one.get(URL).status_code for _ in range(4)] == [200, 200, 429, 429]
    assert one.post(URL, payload()).status_code == 201, "reading does not spend the ingest budget"
    assert two.get(URL).status_code == 200, "another key counts alone"
    clock[0] = T0 + 60  # the 2 accepted reads now weigh 2 x 1.0: still full, the refusals were not counted
    assert one.get(URL).status_code == 429
    clock[0] = T0 + 90
    assert one.get(URL).status_code == 200


@pytest.mark.django_db
@override_settings(API_THROTTLE_GENERATION_TOKENS=["1000/min"])
def test_generation_is_counted_in_tokens_asked_and_refused_in_openais_shape(make_api, clock):
    api = make_api()
    ask = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    # the throttle charges before the view answers (here 404: no such model), so no model is needed
    assert api.post(CHAT, {**ask, "n": 2, "max_tokens": 400}).status_code == 404
    refused = api.post(CHAT, {**ask, "max_completion_tokens": 300, "max_tokens": 1})
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("throttled", None)
    assert error["message"].startswith("Over this API key's rate of 1000/min generation tokens (n x max_tokens).")
    assert api.post(CHAT, {**ask, "max_tokens": 200}).status_code == 404, "200 more fit exactly"
    generate = api.post("/api/v1/generate", {"task": "no-such-task", "input_text": "hi", "n": 8, "max_tokens": 8})
    assert (generate.status_code, generate.json()["code"]) == (429, "throttled")
    assert api.get("/v1/models").status_code == 200, "listing models generates nothing"


@pytest.mark.django_db
@override_settings(API_THROTTLE_GENERATION_TOKENS=["1000/min"], SERVING_MAX_TOKENS=512)
def test_a_request_asking_for_the_whole_budget_passes_alone(make_api, clock):
    api = make_api()
    ask = {
        "model": "no-such-model",
        "messages": [{"role": "user", "content": "hi"}],
        "n": 8,
        "max_tokens": 512,
    }
    assert api.post(CHAT, ask).status_code == 404, "4096 tokens asked count as the whole 1000"
    assert api.post(CHAT, {**ask, "n": 1, "max_tokens": 1}).status_code == 429
