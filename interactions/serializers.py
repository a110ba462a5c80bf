"""Output shapes, and input shapes for the API documentation.

Input is checked by `payloads.py` (one fast validator for single and batch requests). The input
serializers below only describe it in the OpenAPI schema, and are built from the validator's own
field tables (`payloads.INTERACTION_SPEC`, `payloads.FEEDBACK_SPEC`): one description, two uses.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from . import payloads
from .models import Candidate, ErasureRequest, Feedback, Interaction, Subject


def _help(spec: payloads.Field) -> str | None:
    limits = []
    if spec.max_bytes:
        default = getattr(payloads.Limits(), spec.max_bytes)
        limits.append(f"At most {spec.max_bytes.upper()} bytes (default {default}).")
    if spec.max_items:
        limits.append(f"At most {spec.max_items.upper()} items (default {getattr(payloads.Limits(), spec.max_items)}).")
    if spec.kind in ("text", "key", "object", "json"):
        limits.append("No control characters but tab, line feed and carriage return." if spec.kind != "key" else "")
    return " ".join(part for part in (spec.help, *limits) if part) or None


def _documenting_field(name: str, spec: payloads.Field) -> serializers.Field:
    # The validator takes null as "not sent" for every optional field.
    common: dict[str, Any] = {"required": spec.required, "allow_null": not spec.required, "help_text": _help(spec)}
    if spec.default is not None:
        common["default"] = spec.default
    kind = spec.kind
    if kind == "slug":
        return serializers.RegexField(f"^{payloads.TASK_RE.pattern}$", max_length=spec.max_chars, **common)
    if kind in ("text", "key"):
        return serializers.CharField(max_length=spec.max_chars, allow_blank=spec.blank, trim_whitespace=False, **common)
    if kind == "integer":
        return serializers.IntegerField(min_value=spec.minimum, max_value=spec.maximum, **common)
    if kind == "unit_float":
        return serializers.FloatField(min_value=0, max_value=1, **common)
    if kind == "choice":
        return serializers.ChoiceField(choices=sorted(spec.options), **common)
    if kind == "ip":
        return serializers.IPAddressField(**common)
    if kind == "object" and spec.item is None:
        return serializers.DictField(**common)
    if kind == "object":
        return documenting_serializer(name, spec.item)(**common)
    if kind == "list":
        return documenting_serializer(name, spec.item)(many=True, **common)
    return serializers.JSONField(**common)


def documenting_serializer(name: str, table: dict[str, payloads.Field] | None) -> type[serializers.Serializer]:
    """A serializer class that documents a payload table (its name becomes the schema component)."""
    fields = {field: _documenting_field(_NESTED.get(field, field), spec) for field, spec in (table or {}).items()}
    return type(f"{name}Serializer", (serializers.Serializer,), {**fields, "__module__": __name__})


_NESTED = {"messages": "InteractionMessage", "candidates": "CandidateInput", "client_context": "ClientContextInput"}
InteractionInputSerializer = documenting_serializer("InteractionInput", payloads.INTERACTION_SPEC)
FeedbackInputSerializer = documenting_serializer("FeedbackInput", payloads.FEEDBACK_SPEC)


class BatchInputSerializer(serializers.Serializer):
    items = InteractionInputSerializer(many=True)


class FeedbackSerializer(serializers.ModelSerializer):
    candidate_rank = serializers.IntegerField(
        source="candidate.rank", allow_null=True, default=None, help_text="kind=choice: the chosen candidate's 0-based rank."
    )

    class Meta:
        model = Feedback
        fields = ["id", "kind", "source", "score", "thumb", "correction", "candidate_id", "candidate_rank", "reason", "created_at"]
        extra_kwargs = {"candidate_id": {"help_text": "kind=choice: the chosen candidate's id."}}


class CandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Candidate
        fields = ["id", "rank", "text", "confidence", "is_chosen"]
        extra_kwargs = {
            "id": {"help_text": "Name it as candidate_id in choice feedback."},
            "rank": {"help_text": "0-based: the position in the list sent, unless the candidate carried a rank."},
        }


class InteractionSerializer(serializers.ModelSerializer):
    feedback = FeedbackSerializer(many=True, read_only=True)
    candidates = CandidateSerializer(many=True, read_only=True)
    subject = serializers.CharField(source="subject.user_hash", allow_null=True, default=None, help_text="Keyed hash of user_id.")

    class Meta:
        model = Interaction
        fields = [
            "id", "task", "subject", "session_id", "messages", "input_text", "structured_prompt", "output_text",
            "model_version", "tokens_input", "tokens_output", "tokens_total", "latency_ms", "confidence", "outcome",
            "reasoning", "context_used", "target_tool", "language", "metadata", "idempotency_key",
            "candidates", "feedback", "created_at", "updated_at",
        ]  # fmt: skip


class CandidateRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="Name it as candidate_id in choice feedback.")
    rank = serializers.IntegerField(help_text="0-based.")


class InteractionPageSerializer(serializers.Serializer):
    """One page of the cursor-paginated list: follow `next` until it is null."""

    next = serializers.URLField(allow_null=True, help_text="The next (older) page, or null on the last one.")
    previous = serializers.URLField(allow_null=True, help_text="The previous (newer) page, or null on the first one.")
    results = InteractionSerializer(many=True)


class RecordedSerializer(serializers.Serializer):
    """The answer to a POST: enough to send feedback later, without echoing the texts back.
    Documents `recorded_body`, which builds it without a serializer (the ingest hot path)."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["created", "replayed"])
    task = serializers.CharField()
    subject = serializers.CharField(allow_null=True, help_text="Keyed hash of user_id.")
    model_version = serializers.CharField()
    idempotency_key = serializers.CharField()
    created_at = serializers.DateTimeField()
    candidates = CandidateRefSerializer(many=True, help_text="Each candidate's id, for choice feedback.")


def recorded_body(interaction: Interaction, status: str, candidates: list[tuple[int, int]] = ()) -> dict[str, Any]:
    return {
        "id": str(interaction.pk),
        "status": status,
        "task": interaction.task,
        "subject": interaction.subject.user_hash if interaction.subject_id else None,
        "model_version": interaction.model_version,
        "idempotency_key": interaction.idempotency_key,
        "created_at": interaction.created_at.isoformat().replace("+00:00", "Z"),
        "candidates": [{"id": pk, "rank": rank} for pk, rank in candidates],
    }


class NotStoredSerializer(serializers.Serializer):
    status = serializers.CharField(default="not_stored")
    detail = serializers.CharField()


class BatchItemSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "replayed", "not_stored"])
    id = serializers.UUIDField(allow_null=True, help_text="Null when not stored (the subject opted out).")
    candidates = CandidateRefSerializer(many=True, required=False, help_text="For a created item that sent candidates.")


class BatchOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    replayed = serializers.IntegerField()
    not_stored = serializers.IntegerField()
    results = BatchItemSerializer(many=True, help_text="One per item, in order.")


class SubjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subject
        fields = ["user_hash", "opted_out", "opted_out_at", "suppressed_interactions", "created_at"]


class ErasureRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = ErasureRequest
        fields = ["id", "subject_hash", "requested_by", "counts", "pending", "created_at"]
