"""Lessons at serving, through the doors: a correction is recalled on the next identical or
paraphrased request (before any training), few-shot prompts carry the nearest lessons in order
with mistakes marked, and a rejected, flagged, opted-out, erased, retired or absorbed lesson is
never used again. Generation goes to a real HTTP stand-in for vLLM (tests/registry), whose
requests show what the model was sent."""

from __future__ import annotations

import pytest

from curation.models import Dataset, DatasetItem, Lesson, LessonSettings, TrainingExample
from curation.services import example_review
from interactions import services as interactions
from interactions.models import Interaction
from registry import services as registry
from tests.helpers import tables_containing
from tests.registry import test_serving_doors
from tests.registry.test_lifecycle import fake_version

pytestmark = pytest.mark.django_db
stub = test_serving_doors.stub  # a real HTTP stand-in for vLLM (fixture)
URL = "/api/v1/interactions"


@pytest.fixture
def support(stub):
    version = fake_version("support", 0, status="approved")
    registry.version_promote(version=version, actor="test")
    return version


def generate(api, text: str, **body) -> dict:
    response = api.post("/api/v1/generate", {"task": "support", "input_text": text, **body}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def feedback(api, interaction_id: str, capture, **body) -> None:
    with capture(execute=True):  # the lesson task runs when the feedback commits (Q_SYNC)
        response = api.post(f"{URL}/{interaction_id}/feedback", body, format="json")
    assert response.status_code == 201, response.content


def correct(api, capture, text: str, correction: str, **body) -> Lesson:
    answer = generate(api, text, **body)
    feedback(api, answer["interaction_id"], capture, kind="correction", correction=correction)
    return Lesson.objects.get(source_interaction_id=answer["interaction_id"])


def lessons_of(interaction_id: str) -> dict:
    return Interaction.objects.get(pk=interaction_id).metadata["lessons"]


def test_a_correction_is_recalled_on_the_next_identical_or_paraphrased_request(
    api,
    support,
    stub,
    django_capture_on_commit_callbacks,
):
    lesson = correct(api, django_capture_on_commit_callbacks, "How do I reset my password?", "Settings > Security > Reset.")
    assert (lesson.origin, lesson.answer, lesson.mistake) == ("correction", "Settings > Security > Reset.", "answer 0")
    assert len(stub["seen"]) == 1
    for text in ("How do I reset my password?", "how can I reset my password"):
        answer = generate(api, text)
        assert answer["texts"] == ["Settings > Security > Reset."]
        used = lessons_of(answer["interaction_id"])
        assert (used["mode"], used["used"]) == ("recall", [lesson.pk])
        assert used["similarity"][0] >= 0.9
    assert len(stub["seen"]) == 1, "a recalled answer generates nothing"
    messages = [{"role": "user", "content": "How do I reset my password?"}]
    chat = api.post("/v1/chat/completions", {"model": "support", "messages": messages}, format="json")
    assert chat.json()["choices"][0]["message"]["content"] == "Settings > Security > Reset."


def test_few_shot_prompts_hold_the_nearest_lessons_in_order_with_mistakes_marked(
    api,
    support,
    stub,
    django_capture_on_commit_callbacks,
):
    capture = django_capture_on_commit_callbacks
    far = correct(api, capture, "What is the weather like in Paris today?", "Check a weather service.")
    near = correct(api, capture, "How do I reset my password on the phone app?", "Tap Profile, then Reset password.")
    middle = correct(api, capture, "How do I change the email address of my account?", "Profile > Email > Change.")
    body = {"recall_enabled": False, "few_shot_k": 3, "few_shot_min_similarity": -1}
    settings = api.put("/api/v1/lessons/settings/support", body, format="json")
    assert settings.status_code == 200, settings.content
    answer = generate(api, "How do I reset my password?")
    system = stub["seen"][-1]["body"]["messages"][0]
    assert system["role"] == "system"
    positions = [system["content"].index(lesson.answer) for lesson in (near, middle, far)]
    assert positions == sorted(positions)
    assert "Mistake to avoid (a wrong answer that was corrected): answer 0" in system["content"]
    assert stub["seen"][-1]["body"]["messages"][1] == {"role": "user", "content": "How do I reset my password?"}
    used = lessons_of(answer["interaction_id"])
    assert (used["mode"], used["used"]) == ("few_shot", [near.pk, middle.pk, far.pk])
    assert Interaction.objects.get(pk=answer["interaction_id"]).messages == [{"role": "user", "content": "How do I reset my password?"}]


def _never_used(api, stub, text: str) -> None:
    answer = generate(api, text)
    assert lessons_of(answer["interaction_id"])["used"] == []
    assert answer["texts"] == ["answer 0"]
    assert stub["seen"][-1]["body"]["messages"] == [{"role": "user", "content": text}]


@pytest.mark.parametrize("how", ["rejected", "flagged", "opted_out", "erased"])
def test_a_lesson_that_leaves_is_never_used_again(how, api, support, stub, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    text = "How do I export my invoices as PDF?"
    lesson = correct(api, capture, text, "Billing > Invoices > Download PDF.", user_id="ann")
    assert generate(api, text)["texts"] == ["Billing > Invoices > Download PDF."]
    if how == "rejected":
        with capture(execute=True):
            example_review(examples=TrainingExample.objects.filter(pk=lesson.example_id), approve=False, reviewer=None)
    elif how == "flagged":
        feedback(api, str(lesson.source_interaction_id), capture, kind="flag", reason="wrong")
    elif how == "opted_out":
        interactions.subject_opt_out(client=api.client_obj, user_id="ann")
    else:
        assert api.delete("/api/v1/subjects/ann").status_code == 200
    _never_used(api, stub, text)
    if how != "opted_out":
        assert not Lesson.objects.filter(status="active").exists()


def test_a_lesson_that_keeps_getting_thumbs_down_retires(api, support, stub, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    text = "Where can I see my order history?"
    lesson = correct(api, capture, text, "Account > Orders.")
    LessonSettings.objects.filter(task="support").update(retire_after_downvotes=2)
    for _ in range(2):
        answer = generate(api, text)
        assert lessons_of(answer["interaction_id"])["used"] == [lesson.pk]
        feedback(api, answer["interaction_id"], capture, kind="thumb", thumb="down")
    lesson.refresh_from_db()
    assert (lesson.status, lesson.downvotes) == ("retired", 2)
    _never_used(api, stub, text)


def test_a_lesson_absorbed_by_the_champion_is_no_longer_injected(api, support, stub, django_capture_on_commit_callbacks):
    text = "How do I close my account?"
    lesson = correct(api, django_capture_on_commit_callbacks, text, "Settings > Close account.")
    dataset = Dataset.objects.create(task="support", name="sft", version=1, kind="sft")
    example = lesson.example
    DatasetItem.objects.create(
        dataset=dataset, example=example, source_interaction_id=example.source_interaction_id, split="train", position=0,
        kind="sft", prompt=example.prompt, target=example.target, quality_score=1, tier="gold", content_hash="x",
    )  # fmt: skip
    trained = fake_version("support", 1, status="approved", dataset=dataset)
    registry.version_promote(version=trained, actor="test")
    _never_used(api, stub, text)


def test_erasure_leaves_no_lesson_and_no_text_of_the_subject(api, support, stub, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    correct(api, capture, "Is my zqxmarker parcel late?", "Parcels zqxmarker arrive in 3 days.", user_id="bob")
    assert tables_containing("zqxmarker")
    assert api.delete("/api/v1/subjects/bob").status_code == 200
    assert not Lesson.objects.exists()
    assert tables_containing("zqxmarker") == {}


def test_a_shadow_trials_other_side_is_given_the_same_lessons(api, support, stub, django_capture_on_commit_callbacks):
    """The challenger of a shadow experiment answers the logged request the way serve() answered it:
    with the task's nearest lessons in the prompt (trial.detail records what it was given)."""
    from abtesting.experiments import experiment_start, trial_record

    capture = django_capture_on_commit_callbacks
    lesson = correct(api, capture, "How do I reset my password on the phone app?", "Tap Profile, then Reset password.")
    LessonSettings.objects.filter(task="support").update(recall_enabled=False, few_shot_k=2, few_shot_min_similarity=-1)
    challenger = fake_version("support", 1, status="candidate")
    experiment = experiment_start(challenger=challenger, actor="test", mode="shadow", sample_rate=0.5)
    served = generate(api, "How do I reset my password?")
    assert lessons_of(served["interaction_id"])["used"] == [lesson.pk]
    before = len(stub["seen"])
    trial = trial_record(experiment_id=experiment.pk, interaction_id=served["interaction_id"])
    other = stub["seen"][before]["body"]
    assert other["model"] == challenger.name
    assert other["messages"][0]["role"] == "system"
    assert lesson.answer in other["messages"][0]["content"]
    assert other["messages"][-1] == {"role": "user", "content": "How do I reset my password?"}
    assert (trial.detail["lessons_other"]["mode"], trial.detail["lessons_other"]["used"]) == ("few_shot", [lesson.pk])
