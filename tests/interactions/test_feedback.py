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
