from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from interactions.models import Candidate, ErasureRequest, Feedback, Interaction, Subject
from tests.factories import ApiClientFactory
from tests.interactions.test_apis import URL, payload


def _post_from_threads(count, send):
    """Run send(api, index) from `count` threads released together; their answers' statuses."""
    barrier = threading.Barrier(count)
    statuses, errors = [], []

    def worker(index):
        api = APIClient()
        api.raise_request_exception = False  # a 500 is counted as a status, not raised
        try:
            barrier.wait()
            statuses.append(send(api, index))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(count)]
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

    def send(api, index):
        return api.post(URL, payload(), format="json", HTTP_AUTHORIZATION=auth, HTTP_IDEMPOTENCY_KEY="race").status_code

    statuses = _post_from_threads(20, send)
    assert Interaction.objects.count() == 1
    assert sorted(statuses) == [200] * 19 + [201]


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_from_8_threads_stores_each_item_once():
    client = ApiClientFactory(scopes=["ingest"])
    auth = f"Bearer {client.raw_key}"
    batch = {"items": [payload(idempotency_key=f"b{i}", user_id=f"new-user-{i}") for i in range(20)]}

    def send(api, index):
        return api.post("/api/v1/interactions/batch", batch, format="json", HTTP_AUTHORIZATION=auth).status_code

    statuses = _post_from_threads(8, send)
    assert Interaction.objects.count() == 20
    assert sorted(statuses) == [200] * 7 + [201]


def _seeded(scopes=("ingest", "read", "admin"), *, interactions=3, candidates=4):
    client = ApiClientFactory(scopes=list(scopes))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {client.raw_key}")
    created = [
        api.post(URL, payload(candidates=[{"text": f"c{i}"} for i in range(candidates)]), format="json").json() for _ in range(interactions)
    ]
    return f"Bearer {client.raw_key}", created


@pytest.mark.django_db(transaction=True)
def test_30_concurrent_feedbacks_on_one_interaction_all_land():
    auth, (created, *_) = _seeded(interactions=1)
    ids = [c["id"] for c in created["candidates"]]

    def send(api, index):
        kinds = [
            {"kind": "choice", "candidate_rank": index % 4},
            {"kind": "choice", "candidate_id": ids[(index + 1) % 4]},
            {"kind": "score", "score": 1 + index % 5},
        ]
        body = kinds[index % 3]
        return api.post(f"{URL}/{created['id']}/feedback", body, format="json", HTTP_AUTHORIZATION=auth).status_code

    statuses = _post_from_threads(30, send)
    assert statuses == [201] * 30
    assert Feedback.objects.count() == 30
    assert Candidate.objects.filter(is_chosen=True).count() == 1
    last_choice = Feedback.objects.filter(kind="choice").latest("created_at")
    assert Candidate.objects.get(is_chosen=True) == last_choice.candidate


@pytest.mark.django_db(transaction=True)
def test_10_concurrent_erasures_of_one_subject_erase_once_and_the_rest_answer_404():
    auth, _ = _seeded()

    def send(api, index):
        return api.delete("/api/v1/subjects/user-42", HTTP_AUTHORIZATION=auth).status_code

    statuses = _post_from_threads(10, send)
    assert sorted(statuses) == [200] + [404] * 9
    assert ErasureRequest.objects.count() == 1
    assert ErasureRequest.objects.get().counts["interactions"] == 3
    assert not Interaction.objects.exists()
    assert not Subject.objects.exists()


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite serialises writers with a file lock and reports foreign keys without SQLSTATE: the race is PostgreSQL's",
)
@pytest.mark.django_db(transaction=True)
def test_ingests_racing_an_erasure_of_the_same_user_never_fail():
    auth, _ = _seeded(interactions=2, candidates=2)

    def send(api, index):
        if index % 4 == 0:
            return api.delete("/api/v1/subjects/user-42", HTTP_AUTHORIZATION=auth).status_code
        if index % 4 == 1:
            body = {"items": [payload(output_text=f"batch {index} {n}") for n in range(3)]}
            return api.post(f"{URL}/batch", body, format="json", HTTP_AUTHORIZATION=auth).status_code
        body = payload(output_text=f"single {index}", candidates=[{"text": "a"}] if index % 4 == 2 else None)
        body = {k: v for k, v in body.items() if v is not None}
        return api.post(URL, body, format="json", HTTP_AUTHORIZATION=auth).status_code

    statuses = _post_from_threads(16, send)
    assert set(statuses) <= {200, 201, 404}, statuses
    assert statuses.count(200) >= 1
    # Whatever survived the erasures hangs off a subject that exists (a fresh one, if it lost the race).
    survivors = Interaction.objects.all()
    assert all(i.subject_id is not None for i in survivors)
    assert Subject.objects.count() <= 1
    assert not Candidate.objects.exclude(interaction__in=survivors).exists()


@pytest.mark.django_db(transaction=True)
def test_feedback_racing_an_erasure_lands_or_answers_404():
    auth, created = _seeded(interactions=4, candidates=3)

    def send(api, index):
        if index == 0:
            return api.delete("/api/v1/subjects/user-42", HTTP_AUTHORIZATION=auth).status_code
        target = created[index % 4]
        body = {"kind": "choice", "candidate_id": target["candidates"][index % 3]["id"]}
        return api.post(f"{URL}/{target['id']}/feedback", body, format="json", HTTP_AUTHORIZATION=auth).status_code

    statuses = _post_from_threads(12, send)
    assert set(statuses) <= {200, 201, 404}, statuses
    assert not Interaction.objects.exists()
    assert not Feedback.objects.exists()
