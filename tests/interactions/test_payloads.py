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


@pytest.fixture(scope="module")
def schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]


def _table_says(spec: payloads.Field) -> dict:
    """What the OpenAPI schema must say of a field, read from the validator's table alone."""
    said = {}
    if spec.max_chars is not None:
        said["maxLength"] = spec.max_chars
    if spec.kind == "integer":
        said.update(minimum=spec.minimum, maximum=spec.maximum)
    return said


@pytest.mark.parametrize(
    ("component", "table"),
    [
        ("InteractionInputRequest", payloads.INTERACTION_SPEC),
        ("FeedbackInputRequest", payloads.FEEDBACK_SPEC),
        ("CandidateInputRequest", payloads.CANDIDATE_SPEC),
        ("InteractionMessageRequest", payloads.MESSAGE_SPEC),
        ("ClientContextInputRequest", payloads.CLIENT_CONTEXT_SPEC),
    ],
)
def test_the_documented_input_is_the_validators_table(schema, component, table):
    documented = schema[component]
    assert set(documented["properties"]) == set(table)
    assert set(documented.get("required", [])) == {name for name, spec in table.items() if spec.required}
    for name, spec in table.items():
        prop = documented["properties"][name]
        assert {k: prop[k] for k in _table_says(spec)} == _table_says(spec), name


def test_the_schema_says_ranks_are_0_based_and_names_candidate_ids(schema):
    feedback = schema["FeedbackInputRequest"]["properties"]
    assert "0-based" in feedback["candidate_rank"]["description"]
    assert "candidate_id" in schema["Feedback"]["properties"]
    assert "0-based" in schema["CandidateInputRequest"]["properties"]["rank"]["description"]
    assert {"id", "rank"} <= set(schema["Candidate"]["properties"])
    assert "candidates" in schema["Recorded"]["required"]


def test_nullable_model_fields_are_nullable_in_the_schema(schema):
    from interactions.models import Interaction

    documented = schema["Interaction"]["properties"]
    nullable = {f.name for f in Interaction._meta.concrete_fields if f.null and f.name in documented}
    assert nullable >= {"structured_prompt", "confidence", "tokens_input", "context_used"}
    assert {name for name in nullable if documented[name].get("nullable")} == nullable
    assert documented["subject"]["nullable"] is True


def test_control_characters_are_refused_field_by_field_for_python_callers():
    bad = {"input_text": "a\x00", "metadata": {"k": ["\x07"]}, "user_id": "\x1b", "idempotency_key": "a\tb"}
    with pytest.raises(payloads.PayloadError) as error:
        payloads.validate_interaction(bad, payloads.Limits())
    assert set(error.value.errors) == set(bad)
    clean = payloads.validate_interaction({"input_text": "tab\tline\nreturn\r"}, payloads.Limits())
    assert clean["input_text"] == "tab\tline\nreturn\r"


@pytest.mark.parametrize("value", [{}, [], 1, None])
def test_a_choice_field_of_any_json_type_is_an_error_not_a_crash(value):
    with pytest.raises(payloads.PayloadError) as error:
        payloads.validate_feedback({"kind": value, "source": value if value is not None else {}}, payloads.Limits())
    assert "kind" in error.value.errors


def test_the_documented_post_answer_matches_what_is_sent():
    import datetime as dt
    from types import SimpleNamespace

    fake = SimpleNamespace(pk="x", task="t", subject_id=None, model_version="", idempotency_key="", created_at=dt.datetime.now(dt.UTC))
    assert set(serializers.recorded_body(fake, "created", [(1, 0)])) == set(serializers.RecordedSerializer().fields)
    assert set(serializers.recorded_body(fake, "created")) == set(serializers.RecordedSerializer().fields)
