from __future__ import annotations

import json

import pytest
from django.dispatch import receiver

from interactions.models import ErasureRequest, Interaction, Subject
from interactions.signals import subject_erased
from tests.helpers import tables_containing
from tests.interactions.test_apis import URL, payload

pytestmark = pytest.mark.django_db

SECRET_TEXT = "my-very-private-question-7731"
RAW_USER_ID = "alice@example.com"


def test_an_opted_out_subjects_new_text_never_reaches_the_database(api):
    assert api.post(f"/api/v1/subjects/{RAW_USER_ID}/opt-out").json()["opted_out"] is True
    response = api.post(URL, payload(user_id=RAW_USER_ID, input_text=SECRET_TEXT, messages=None, output_text=SECRET_TEXT))
    assert response.status_code == 202
    assert response.json()["status"] == "not_stored"
    assert tables_containing(SECRET_TEXT) == {}
    assert Subject.objects.get().suppressed_interactions == 1
    assert api.post(URL, payload(user_id="bob")).status_code == 201


def test_opt_out_is_idempotent_and_keeps_the_first_time(api):
    first = api.post("/api/v1/subjects/u/opt-out").json()
    again = api.post("/api/v1/subjects/u/opt-out").json()
    assert first["opted_out_at"] == again["opted_out_at"]


def test_export_returns_everything_stored_about_the_subject(api):
    created = api.post(URL, payload(user_id=RAW_USER_ID, candidates=[{"text": "c"}], client_context={"ip_address": "10.0.0.1"})).json()
    api.post(f"{URL}/{created['id']}/feedback", {"kind": "score", "score": 5})
    api.post(URL, payload(user_id="someone-else"))
    response = api.get(f"/api/v1/subjects/{RAW_USER_ID}/export")
    assert response.status_code == 200
    body = json.loads(b"".join(response.streaming_content))
    assert body["subject"]["opted_out"] is False
    assert [i["id"] for i in body["interactions"]] == [created["id"]]
    exported = body["interactions"][0]
    assert exported["client_context"]["ip_address"] == "10.0.0.1"
    assert exported["feedback"][0]["score"] == 5
    assert exported["candidates"][0]["text"] == "c"
    assert api.get("/api/v1/subjects/nobody/export").status_code == 404


def test_erasure_leaves_no_trace_of_the_subject_and_an_audit_without_the_raw_id(api):
    created = api.post(
        URL,
        payload(
            user_id=RAW_USER_ID,
            output_text=SECRET_TEXT,
            candidates=[{"text": SECRET_TEXT}],
            client_context={"ip_address": "198.51.100.7", "user_agent": "UA-7731"},
        ),
    ).json()
    api.post(f"{URL}/{created['id']}/feedback", {"kind": "correction", "correction": SECRET_TEXT + " corrected"})
    api.post(f"{URL}/{created['id']}/feedback", {"kind": "choice", "candidate_rank": 0})
    kept = api.post(URL, payload(user_id="bob")).json()
    user_hash = Subject.objects.get(interactions__id=created["id"]).user_hash

    response = api.delete(f"/api/v1/subjects/{RAW_USER_ID}")

    assert response.status_code == 200
    counts = response.json()["counts"]
    own = {"feedback": 2, "candidates": 1, "client_contexts": 1, "interactions": 1, "subjects": 1}
    assert {name: counts[name] for name in own} == own
    assert counts["training_examples"] == 0  # curation's receiver answered too
    assert tables_containing(SECRET_TEXT) == {}
    assert tables_containing("198.51.100.7") == {}
    assert tables_containing("UA-7731") == {}
    assert tables_containing(RAW_USER_ID) == {}
    assert tables_containing(user_hash) == {"interactions_erasurerequest": 1}
    assert ErasureRequest.objects.get().requested_by.startswith("api:")
    assert Interaction.objects.filter(pk=kept["id"]).exists()
    assert api.delete(f"/api/v1/subjects/{RAW_USER_ID}").status_code == 404


def test_erasure_tells_later_apps_and_records_what_they_removed(api):
    api.post(URL, payload(user_id=RAW_USER_ID))
    seen = {}

    @receiver(subject_erased)
    def derived_rows(sender, client, subject_id, subject_hash, interaction_ids, **kwargs):
        seen["ids"] = interaction_ids
        seen["still_there"] = Interaction.objects.filter(pk__in=interaction_ids).count()
        return {"training_examples": 3}

    try:
        counts = api.delete(f"/api/v1/subjects/{RAW_USER_ID}").json()["counts"]
    finally:
        subject_erased.disconnect(derived_rows)
    assert counts["training_examples"] == 3
    assert len(seen["ids"]) == 1
    assert seen["still_there"] == 1  # receivers run before the rows go


def test_a_failing_receiver_aborts_the_erasure_and_keeps_everything(api):
    api.post(URL, payload(user_id=RAW_USER_ID))

    @receiver(subject_erased)
    def broken(**kwargs):
        raise RuntimeError("derived store unavailable")

    try:
        with pytest.raises(RuntimeError):
            api.delete(f"/api/v1/subjects/{RAW_USER_ID}")
    finally:
        subject_erased.disconnect(broken)
    assert Interaction.objects.count() == 1
    assert not ErasureRequest.objects.exists()
