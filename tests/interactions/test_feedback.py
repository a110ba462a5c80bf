from __future__ import annotations

import pytest

from interactions.models import Candidate, Feedback
from tests.interactions.test_apis import URL, payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def interaction_id(api):
    return api.post(URL, payload(candidates=[{"text": "first"}, {"text": "second"}])).json()["id"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "score", "score": 4},
        {"kind": "thumb", "thumb": "down", "reason": "too long"},
        {"kind": "correction", "correction": "Settings > Security > Reset password.", "source": "staff"},
        {"kind": "flag", "reason": "offensive"},
        {"kind": "choice", "candidate_rank": 1},
    ],
)
def test_each_kind_of_feedback_is_stored(api, interaction_id, body):
    response = api.post(f"{URL}/{interaction_id}/feedback", body)
    assert response.status_code == 201, response.json()
    assert response.json()["kind"] == body["kind"]
    assert Feedback.objects.get().kind == body["kind"]
    detail = api.get(f"{URL}/{interaction_id}").json()
    assert [f["kind"] for f in detail["feedback"]] == [body["kind"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "score", "score": 6}, "score"),
        ({"kind": "score", "score": 0}, "score"),
        ({"kind": "score", "score": 4.5}, "score"),
        ({"kind": "thumb", "thumb": "sideways"}, "thumb"),
        ({"kind": "correction", "correction": "   "}, "correction"),
        ({"kind": "correction"}, "correction"),
        ({"kind": "choice", "candidate_rank": 9}, "candidate_rank"),
        ({"kind": "choice"}, "candidate_rank"),
        ({"kind": "flag"}, "reason"),
        ({"kind": "score", "score": 5, "thumb": "up"}, "thumb"),
        ({"kind": "love"}, "kind"),
        ({"kind": "score", "score": 5, "source": "robot"}, "source"),
        ({"kind": "score", "score": 5, "extra": 1}, "extra"),
    ],
)
def test_invalid_feedback_answers_400_with_the_field_message(api, interaction_id, body, field):
    response = api.post(f"{URL}/{interaction_id}/feedback", body)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()
    assert not Feedback.objects.exists()


def test_the_latest_choice_marks_its_candidate_chosen(api, interaction_id):
    api.post(f"{URL}/{interaction_id}/feedback", {"kind": "choice", "candidate_rank": 0})
    api.post(f"{URL}/{interaction_id}/feedback", {"kind": "choice", "candidate_rank": 1})
    assert list(Candidate.objects.order_by("rank").values_list("is_chosen", flat=True)) == [False, True]
    assert Feedback.objects.filter(kind="choice").count() == 2


def test_feedback_on_an_unknown_interaction_is_404(api):
    assert api.post(f"{URL}/00000000-0000-0000-0000-000000000000/feedback", {"kind": "score", "score": 5}).status_code == 404


def test_a_choice_names_its_candidate_by_the_id_the_post_answered(api):
    created = api.post(URL, payload(candidates=[{"text": "first"}, {"text": "second"}, {"text": "third"}])).json()
    assert [c["rank"] for c in created["candidates"]] == [0, 1, 2]
    second = created["candidates"][1]["id"]
    response = api.post(f"{URL}/{created['id']}/feedback", {"kind": "choice", "candidate_id": second})
    assert response.status_code == 201, response.json()
    assert (response.json()["candidate_id"], response.json()["candidate_rank"]) == (second, 1)
    detail = api.get(f"{URL}/{created['id']}").json()
    assert [(c["id"], c["is_chosen"]) for c in detail["candidates"]] == [(c["id"], c["id"] == second) for c in created["candidates"]]
    assert Candidate.objects.get(is_chosen=True).text == "second"


def test_a_replay_answers_the_same_candidate_ids(api):
    body = payload(candidates=[{"text": "a", "rank": 5}, {"text": "b", "rank": 7}])
    first = api.post(URL, body, HTTP_IDEMPOTENCY_KEY="k").json()
    again = api.post(URL, body, HTTP_IDEMPOTENCY_KEY="k").json()
    assert again["status"] == "replayed"
    assert again["candidates"] == first["candidates"]
    assert [c["rank"] for c in first["candidates"]] == [5, 7]


def test_a_one_based_rank_past_the_last_candidate_is_refused_naming_the_ranks(api, interaction_id):
    response = api.post(f"{URL}/{interaction_id}/feedback", {"kind": "choice", "candidate_rank": 2})
    assert response.status_code == 400
    assert "0-based ranks: [0, 1]" in response.json()["errors"]["candidate_rank"][0]


def test_a_candidate_of_another_interaction_cannot_be_chosen(api, interaction_id):
    other = api.post(URL, payload(candidates=[{"text": "elsewhere"}])).json()
    body = {"kind": "choice", "candidate_id": other["candidates"][0]["id"]}
    response = api.post(f"{URL}/{interaction_id}/feedback", body)
    assert response.status_code == 400
    assert "candidate_id" in response.json()["errors"]
    assert not Candidate.objects.filter(is_chosen=True).exists()


def test_a_batch_answers_the_candidate_ids_of_each_created_item(api):
    items = [payload(candidates=[{"text": "x"}, {"text": "y"}]), payload(output_text="no candidates")]
    results = api.post(f"{URL}/batch", {"items": items}).json()["results"]
    assert [c["rank"] for c in results[0]["candidates"]] == [0, 1]
    assert "candidates" not in results[1]
    chosen = results[0]["candidates"][1]["id"]
    assert api.post(f"{URL}/{results[0]['id']}/feedback", {"kind": "choice", "candidate_id": chosen}).status_code == 201
