"""Ground-truth verdicts (a wrong answer never wins), the task's scorer and the answer budget."""

from __future__ import annotations

import json

import pytest

from abtesting import verdicts
from abtesting.models import EvaluationSettings

TRUTH = json.dumps({"action": "open", "object": "file", "id": 12})
RIGHT = TRUTH
HALF_RIGHT = json.dumps({"action": "open", "object": "note", "id": 13})
WRONG = json.dumps({"action": "close", "object": "note", "id": 3})


def verdict(a: str, b: str, truth: str = TRUTH, **config) -> str:
    return verdicts.ground_truth_verdict(a, b, truth, config=EvaluationSettings(task="t", **config))[0]


@pytest.mark.parametrize("wrong", ["", WRONG, HALF_RIGHT, RIGHT[:-1], "I don't know"])
def test_a_wrong_answer_never_wins_on_ground_truth(wrong):
    for other in ("", WRONG, HALF_RIGHT, "I don't know"):
        assert verdict(other, wrong) == "tie", "both wrong is a tie, however close one comes"
        assert verdict(wrong, other) == "tie"
    assert verdict(wrong, RIGHT) == "B"
    assert verdict(RIGHT, wrong) == "A"
    assert verdict(RIGHT, RIGHT) == "tie"


def test_the_verdict_stores_both_scores_and_what_was_right():
    _, detail = verdicts.ground_truth_verdict("", HALF_RIGHT, TRUTH, config=EvaluationSettings(task="t"))
    assert detail == {"score_a": 0.0, "score_b": pytest.approx(1 / 3, abs=1e-4), "right_a": False, "right_b": False,
                      "scorer": "json_fields"}  # fmt: skip


def test_free_text_truth_is_right_up_to_case_and_punctuation_and_the_scorer_can_be_chosen():
    both_right = verdict("Paris is the capital", "paris, is the capital!", truth="Paris is the capital.")
    assert both_right == "A", "both right: the one closer by the scorer (chrF) wins"
    assert verdict("Paris is the capital.", "Paris is the capital.", truth="Paris is the capital.") == "tie"
    assert verdict("Rome", "Paris is the capital", truth="Paris is the capital.") == "B"
    assert verdict("Rome", "Pariss is the capital", truth="Paris is the capital.") == "tie", "close is still wrong"
    # exact match chosen for the task: only the exact answer is right
    assert verdict("paris is the capital", "Paris is the capital.", truth="Paris is the capital.", scorer="exact_match") == "B"
    # numbers within the task's tolerance are right
    amounts = json.dumps({"amount": 100.0})
    assert verdict('{"amount": 100.4}', "", truth=amounts, number_tolerance=0.01) == "A"
    assert verdict('{"amount": 100.4}', "", truth=amounts) == "tie"


def test_the_budget_is_a_requests_and_never_short_of_the_expected_answer(settings):
    settings.SERVING_MAX_TOKENS = 512
    default = EvaluationSettings(task="t")
    assert verdicts.answer_budget(default, "42") == verdicts.REQUEST_TOKENS == 64
    long_answer = json.dumps({"summary": "x" * 300})
    assert verdicts.answer_budget(default, long_answer) == len(long_answer) + 8
    assert verdicts.answer_budget(EvaluationSettings(task="t", max_tokens=128), "42") == 128
    assert verdicts.answer_budget(EvaluationSettings(task="t", max_tokens=8), TRUTH) == len(TRUTH) + 8
    settings.SERVING_MAX_TOKENS = 100
    assert verdicts.answer_budget(default, long_answer) == 100, "never above what a request may ask"
