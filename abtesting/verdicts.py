"""How a task's answers are scored and judged: the scorer its evaluation settings choose (suites,
the arena, trial verdicts), the token budget of an evaluated answer, and the ground-truth verdict
of two answers.

- scorer `auto` (the default): a case or a ground truth that is a JSON object or array is scored
  field by field (scorers.json_fields); anything else by the suite's weights (trial verdicts: by
  REFERENCE_WEIGHTS, normalized match and chrF). `suite_weights` always uses the weights; a named
  scorer alone replaces them.
- an answer is *right* when the strictest correctness scorer among those weights (JSON fields,
  exact match, normalized match; normalized match when none is named) gives it 1.
- a ground-truth verdict: both wrong is a tie; one right wins; both right: the higher score wins
  (within TIE_WITHIN a tie). A wrong answer never wins.
- the budget: the task's max_tokens, or what a request naming none gets (REQUEST_TOKENS), never
  below the expected answer's UTF-8 length + 8 (a token covers at least one byte, so the answer
  always has room for the expected one and its end), at most SERVING_MAX_TOKENS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from . import scorers
from .models import EvalCase, EvaluationSettings

REQUEST_TOKENS = 64  # what /api/v1/generate and /v1/chat/completions give a request naming no max_tokens
REFERENCE_WEIGHTS = {"normalized_match": 2.0, "reference_similarity": 1.0, "no_placeholders": 0.5, "no_error_text": 0.5}
TIE_WITHIN = 0.01
S = EvaluationSettings.Scorer


def task_settings(task: str) -> EvaluationSettings:
    """The task's saved settings, or the defaults (unsaved) when it has none."""
    return EvaluationSettings.objects.filter(task=task).first() or EvaluationSettings(task=task)


def weights_for(config: EvaluationSettings, *, expected: str, weights: Mapping[str, float]) -> dict[str, float]:
    """The scorers (with weights) an answer to `expected` is scored with under the task's choice."""
    if config.scorer == S.AUTO:
        return {"json_fields": 1.0} if scorers.is_json_target(expected) else dict(weights)
    if config.scorer == S.SUITE:
        return dict(weights)
    return {config.scorer: 1.0}


def case_of(config: EvaluationSettings, case: EvalCase) -> scorers.Case:
    return scorers.Case(
        expected=case.expected, keywords=tuple(case.keywords), expects_json=case.expects_json,
        number_tolerance=config.number_tolerance,
    )  # fmt: skip


def answer_budget(config: EvaluationSettings, expected: str) -> int:
    """Tokens an evaluated answer may use (see the module docstring)."""
    wanted = max(config.max_tokens or REQUEST_TOKENS, len(expected.encode("utf-8")) + 8)
    return min(settings.SERVING_MAX_TOKENS, wanted)


@dataclass(frozen=True)
class Judged:
    score: float
    right: bool


def judge(output: str, case: scorers.Case, weights: Mapping[str, float]) -> Judged:
    """The answer's score by the weights, and whether it is right (the strictest correctness
    scorer among them gives 1)."""
    check = next((name for name in scorers.CORRECTNESS if name in weights), "normalized_match")
    right = scorers.SCORERS[check](output, case) >= 1 - 1e-9
    return Judged(scorers.score(output, case, weights).total, right)


def ground_truth_verdict(a: str, b: str, truth: str, *, config: EvaluationSettings) -> tuple[str, dict[str, Any]]:
    """A (control), B (challenger) or tie against the ground truth; a wrong answer never wins."""
    weights = weights_for(config, expected=truth, weights=REFERENCE_WEIGHTS)
    case = scorers.Case(expected=truth, expects_json=scorers.is_json_target(truth), number_tolerance=config.number_tolerance)
    first, second = judge(a, case, weights), judge(b, case, weights)
    if first.right != second.right:
        verdict = "B" if second.right else "A"
    elif not first.right or abs(first.score - second.score) <= TIE_WITHIN:
        verdict = "tie"
    else:
        verdict = "B" if second.score > first.score else "A"
    detail = {
        "score_a": first.score, "score_b": second.score, "right_a": first.right, "right_b": second.right,
        "scorer": "+".join(sorted(weights)),
    }  # fmt: skip
    return verdict, detail
