from __future__ import annotations

import pytest

from abtesting.scorers import (
    Case,
    chrf,
    exact_match,
    formatting,
    keyword_coverage,
    length_appropriateness,
    no_error_text,
    no_placeholders,
    normalized_match,
    score,
)


def test_matches():
    case = Case(expected="Paris is the capital of France.")
    assert exact_match("Paris is the capital of France.", case) == 1.0
    assert exact_match("paris is the capital of france", case) == 0.0
    assert normalized_match("  PARIS is the capital of France!! ", case) == 1.0


def test_keyword_coverage_counts_each_keyword_once():
    case = Case(keywords=["Settings", "Security", "reset"])
    assert keyword_coverage("Open settings, then security.", case) == pytest.approx(2 / 3)
    assert keyword_coverage("anything", Case()) == 1.0


def test_length_appropriateness_falls_off_outside_the_range():
    case = Case(length=(4, 8))
    assert length_appropriateness("one two three four five", case) == 1.0
    assert length_appropriateness("one two three", case) == pytest.approx(0.5)
    assert length_appropriateness("w " * 16, case) == 0.0
    assert length_appropriateness("two words", Case(expected="a b c d")) == 1.0


def test_hygiene_scorers():
    assert no_placeholders("Dear [insert name]", Case()) == 0.0
    assert no_placeholders("Dear Ada", Case()) == 1.0
    assert no_error_text("Traceback (most recent call last): ...", Case()) == 0.0
    assert no_error_text("All good.", Case()) == 1.0


def test_formatting_checks_json_when_expected():
    case = Case(expects_json=True)
    assert formatting('{"a": 1}', case) == 1.0
    assert formatting('```json\n{"a": 1}\n```', case) == 1.0
    assert formatting("{a: 1}", case) == 0.0
    assert formatting("{a: 1}", Case()) == 1.0


def test_chrf_rewards_closer_answers():
    case = Case(expected="The meeting moved to Friday afternoon.")
    assert chrf("The meeting moved to Friday afternoon.", case) == pytest.approx(1.0)
    close, far = chrf("The meeting was moved to Friday.", case), chrf("Bananas are yellow.", case)
    assert 0 < far < close < 1


def test_a_suite_weights_its_scorers_and_refuses_unknown_ones():
    result = score("Paris", Case(expected="Paris", keywords=["Paris"]), {"exact_match": 2, "keyword_coverage": 1, "length": 1})
    assert result.total == 1.0
    assert set(result.parts) == {"exact_match", "keyword_coverage", "length"}
    with pytest.raises(ValueError, match="unknown scorers: vibes"):
        score("x", Case(), {"vibes": 1})


def test_json_fields_scores_field_by_field_with_missing_and_extra_fields_counted():
    from abtesting.scorers import json_fields

    case = Case(expected='{"action": "open", "object": "file", "id": 12}', expects_json=True)
    assert json_fields('{"id": 12, "object": "file", "action": "open"}', case) == 1.0, "key order does not matter"
    assert json_fields('```json\n{"action": "open", "object": "file", "id": 12.0}\n```', case) == 1.0, "12.0 is 12"
    assert json_fields('{"action": "open", "object": "note", "id": 12}', case) == pytest.approx(2 / 3)
    assert json_fields('{"action": "open", "id": 12}', case) == pytest.approx(2 / 3), "a missing field scores 0"
    assert json_fields('{"action": "open", "object": "file", "id": 12, "extra": 1}', case) == pytest.approx(3 / 4)
    assert json_fields('{"action": "open", "object": "file", "id": "12"}', case) == pytest.approx(2 / 3), "types count"
    assert json_fields('{"action": "open", "object": "file", "id": 1', case) == 0.0, "cut short: not JSON"
    assert json_fields("", case) == 0.0
    tolerant = Case(expected='{"amount": 100.0, "items": [1, 2]}', number_tolerance=0.01)
    assert json_fields('{"amount": 100.5, "items": [1, 2]}', tolerant) == 1.0
    assert json_fields('{"amount": 102, "items": [1, 2, 3]}', tolerant) == pytest.approx(1 / 3)
    assert json_fields('{"amount": 100.5, "items": [1, 2]}', Case(expected=tolerant.expected)) == 0.5, "exact by default"
    assert json_fields("Paris", Case(expected="paris")) == 1.0, "not JSON: normalized match"
