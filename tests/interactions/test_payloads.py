"""The validator is pure: these tests need no database."""

from __future__ import annotations

import pytest

from interactions import payloads, serializers

LIMITS = payloads.Limits(max_text_bytes=10, max_metadata_bytes=20, max_messages=2, max_candidates=2)


def test_utf8_length_is_counted_in_bytes_not_characters():
    assert not payloads.utf8_len_over("ab", 2)
    assert payloads.utf8_len_over("é" * 2, 3)
    assert not payloads.utf8_len_over("é" * 2, 4)
    assert payloads.utf8_len_over("x" * 11, 10)


def test_it_reports_every_bad_field_at_once():
    with pytest.raises(payloads.PayloadError) as error:
        payloads.validate_interaction({"input_text": "x" * 11, "confidence": "high", "messages": [{}] * 3}, LIMITS)
    assert set(error.value.errors) == {"input_text", "confidence", "messages"}


def test_the_request_hash_ignores_key_order():
    assert payloads.request_hash({"a": 1, "b": [1, 2]}) == payloads.request_hash({"b": [1, 2], "a": 1})
    assert payloads.request_hash({"a": 1}) != payloads.request_hash({"a": 2})


def test_input_text_prefers_the_last_user_turn():
    clean = payloads.validate_interaction(
        {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]},
        payloads.Limits(max_messages=5),
    )
    assert clean["input_text"] == "c"


def test_the_documented_input_matches_the_validator():
    assert set(serializers.InteractionInputSerializer().fields) == payloads.INTERACTION_FIELDS
    assert set(serializers.FeedbackInputSerializer().fields) == payloads.FEEDBACK_FIELDS


def test_the_documented_post_answer_matches_what_is_sent():
    import datetime as dt
    from types import SimpleNamespace

    fake = SimpleNamespace(pk="x", task="t", subject_id=None, model_version="", idempotency_key="", created_at=dt.datetime.now(dt.UTC))
    assert set(serializers.recorded_body(fake, "created")) == set(serializers.RecordedSerializer().fields)
