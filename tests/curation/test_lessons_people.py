"""People: a choice among candidates (the hypothesize/execute flow: n > 1, then `choice`) moves
the chooser's facets by the documented rule, keeps each change with its cause, remembers goals
and history, shows in the export and the memory endpoint, is sent to the model as a bounded
preamble, never crosses API clients, is never made for an opted-out user, and goes with erasure."""

from __future__ import annotations

import json

import pytest

from curation.lessons import people
from curation.models import Memory, Persona, PersonaChange
from interactions import services as interactions
from registry import services as registry
from tests.helpers import tables_containing
from tests.registry import test_serving_doors
from tests.registry.test_lifecycle import fake_version

pytestmark = pytest.mark.django_db
stub = test_serving_doors.stub
CODE = "```python\nprint('hi')\n```"
STEPS = "1. Open a terminal.\n2. Start Python.\n3. Type the print call.\n" + "Then read on. " * 30
PROMPT = "I want to learn Python for data work. How do I print text?"


def record_with_candidates(api, user_id: str = "ann") -> str:
    body = {
        "task": "support", "user_id": user_id, "input_text": f"{PROMPT} ({user_id}-marker)", "output_text": STEPS,
        "candidates": [{"text": STEPS, "rank": 0, "confidence": 0.6}, {"text": CODE, "rank": 1, "confidence": 0.4}],
    }  # fmt: skip
    response = api.post("/api/v1/interactions", body, format="json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def choose(api, interaction_id: str, capture, rank: int) -> None:
    with capture(execute=True):
        response = api.post(f"/api/v1/interactions/{interaction_id}/feedback", {"kind": "choice", "candidate_rank": rank}, format="json")
    assert response.status_code == 201, response.content


def test_the_rule_moves_only_the_facets_where_the_chosen_candidate_differs():
    moved = people.moves({}, cause="choice", endorsed=CODE, others=[STEPS])
    assert moved == {"concise": (0.5, 0.65), "step_by_step": (0.5, 0.35), "code_first": (0.5, 0.65)}
    assert people.moves({}, cause="choice", endorsed=CODE, others=["```sh\nls\n```"]) == {}
    assert people.moves({"concise": 0.65}, cause="thumb_down", endorsed=STEPS)["concise"] == (0.65, 0.7025)


def test_a_choice_moves_the_facets_keeps_the_cause_and_shows_in_memory_and_export(api, django_capture_on_commit_callbacks):
    choose(api, record_with_candidates(api), django_capture_on_commit_callbacks, rank=1)
    memory = api.get("/api/v1/subjects/ann/memory").json()
    assert memory["persona"]["facets"] == {"concise": 0.65, "step_by_step": 0.35, "code_first": 0.65}
    changes = [(c["facet"], c["before"], c["after"], c["cause"]) for c in memory["persona"]["changes"]]
    assert changes == [("concise", 0.5, 0.65, "choice"), ("step_by_step", 0.5, 0.35, "choice"), ("code_first", 0.5, 0.65, "choice")]
    kinds = {m["kind"]: m["text"] for m in memory["memories"]}
    assert kinds["goal"] == "learn Python for data work"
    assert kinds["history"].startswith("chose an answer about: I want to learn Python")
    export = json.loads(b"".join(api.get("/api/v1/subjects/ann/export").streaming_content))
    assert export["memory"]["persona"]["facets"] == memory["persona"]["facets"]
    assert [m["text"] for m in export["memory"]["memories"]] == [m["text"] for m in memory["memories"]]
    assert len(export["memory"]["persona"]["changes"]) == 3
    choose(api, record_with_candidates(api), django_capture_on_commit_callbacks, rank=1)
    assert Persona.objects.get().facets["concise"] == 0.755  # 0.65 + 0.3 x (1 - 0.65)


def test_the_preamble_reaches_the_model_bounded_and_never_for_another_client(api, make_api, stub, django_capture_on_commit_callbacks):
    registry.version_promote(version=fake_version("support", 0, status="approved"), actor="test")
    choose(api, record_with_candidates(api), django_capture_on_commit_callbacks, rank=1)
    api.post("/api/v1/generate", {"task": "support", "input_text": "and lists?", "user_id": "ann"}, format="json")
    system = stub["seen"][-1]["body"]["messages"][0]
    assert system["role"] == "system"
    assert system["content"].startswith("About this user:\nPrefers concise answers.")
    assert "Goal: learn Python for data work" in system["content"]
    assert len(system["content"]) <= 80 * 4
    other = make_api()
    other.post("/api/v1/generate", {"task": "support", "input_text": "and lists?", "user_id": "ann"}, format="json")
    assert stub["seen"][-1]["body"]["messages"] == [{"role": "user", "content": "and lists?"}]
    theirs = other.get("/api/v1/subjects/ann/memory").json()  # the other client's own "ann": a new subject
    assert (theirs["persona"]["changes"], theirs["memories"]) == ([], [])


def test_nothing_is_made_for_an_opted_out_user_and_erasure_leaves_nothing(api, django_capture_on_commit_callbacks):
    interaction_id = record_with_candidates(api)
    interactions.subject_opt_out(client=api.client_obj, user_id="ann")
    choose(api, interaction_id, django_capture_on_commit_callbacks, rank=1)
    assert not Persona.objects.exists()
    assert not Memory.objects.exists()
    choose(api, record_with_candidates(api, user_id="bob"), django_capture_on_commit_callbacks, rank=1)
    assert Memory.objects.exists()
    assert api.delete("/api/v1/subjects/bob/memory").json() == {"personas": 1, "persona_changes": 3, "memories": 2}
    choose(api, record_with_candidates(api, user_id="bob"), django_capture_on_commit_callbacks, rank=1)
    assert api.delete("/api/v1/subjects/bob").status_code == 200
    assert (Persona.objects.count(), PersonaChange.objects.count(), Memory.objects.count()) == (0, 0, 0)
    assert tables_containing("bob-marker") == {}
