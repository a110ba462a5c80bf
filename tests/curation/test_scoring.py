from __future__ import annotations

import pytest

from curation.scoring import Signals, sanity, score


def test_a_correction_is_gold():
    result = score(Signals(corrected=True), "The corrected answer.")
    assert result.tier == "gold"
    assert result.breakdown["signals"]["human_validation"]["value"] == 1.0


def test_one_uncorroborated_rating_is_not_gold_but_two_agreeing_are():
    assert score(Signals(scores=[5]), "Fine answer.").tier == "silver"
    assert score(Signals(scores=[4]), "Fine answer.").tier == "bronze"
    assert score(Signals(scores=[5], thumbs=[True]), "Fine answer.").tier == "gold"


def test_disagreeing_ratings_lower_the_score():
    agreeing = score(Signals(scores=[5, 5]), "x y").quality
    disagreeing = score(Signals(scores=[5, 1]), "x y").quality
    assert disagreeing < agreeing


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("Dear [insert name here], thanks", "placeholder"),
        ("TODO: write the answer", "placeholder"),
        ("Lorem ipsum dolor sit amet", "placeholder"),
        ("Traceback (most recent call last): boom", "error text"),
        ("Error: upstream timed out", "error text"),
    ],
)
def test_insane_outputs_are_rejected_whatever_the_ratings(text, problem):
    result = score(Signals(scores=[5, 5], thumbs=[True], corrected=True), text)
    assert result.tier == "reject"
    assert problem in result.breakdown["sanity_problems"]


def test_sanity_accepts_normal_text():
    assert sanity("Open Settings, then Security.") == (1.0, [])


def test_a_negative_label_is_strong_when_users_disliked_it():
    disliked = score(Signals(scores=[1], thumbs=[False], negative_label=True), "bad answer")
    assert disliked.tier == "gold"
    assert "confidence" not in disliked.breakdown["signals"]


def test_weights_are_configurable():
    signals = Signals(scores=[5], confidence=0.1)
    assert score(signals, "ok answer", weights={"feedback_score": 1.0, "confidence": 0.0}).quality == 1.0
    assert score(signals, "ok answer", weights={"feedback_score": 0.0, "confidence": 1.0}).quality == pytest.approx(0.1)


def test_missing_reasoning_counts_only_when_the_task_asks_for_it():
    base = Signals(scores=[5], thumbs=[True])
    assert score(base, "answer").quality == 1.0
    assert score(Signals(scores=[5], thumbs=[True], reasoning_required=True), "answer").quality < 1.0
    assert score(Signals(scores=[5], thumbs=[True], reasoning_required=True, has_reasoning=True), "answer").quality == 1.0
