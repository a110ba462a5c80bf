"""Output shapes, and input shapes for the API documentation.

Input is checked by `payloads.py` (one fast validator for single and batch requests); the
input serializers below only describe it in the OpenAPI schema. A test keeps both in step.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from . import payloads
from .models import Candidate, ErasureRequest, Feedback, Interaction, Subject


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=sorted(payloads.ROLES))
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)


class CandidateInputSerializer(serializers.Serializer):
    text = serializers.CharField()
    confidence = serializers.FloatField(required=False, min_value=0, max_value=1)
    rank = serializers.IntegerField(required=False, min_value=0, help_text="Defaults to the position in the list.")


class ClientContextInputSerializer(serializers.Serializer):
    ip_address = serializers.IPAddressField(required=False, help_text="The end user's IP (kept CLIENT_CONTEXT_RETENTION_DAYS).")
    user_agent = serializers.CharField(required=False, max_length=512)


class InteractionInputSerializer(serializers.Serializer):
    task = serializers.SlugField(required=False, default="default", help_text="The model slot, e.g. support.")
    messages = MessageSerializer(many=True, required=False, help_text="The input as chat messages; or send input_text.")
    input_text = serializers.CharField(required=False, help_text="The plain input; derived from messages if absent.")
    structured_prompt = serializers.JSONField(required=False)
    output_text = serializers.CharField(required=False, allow_blank=True)
    model_version = serializers.CharField(required=False, max_length=200)
    tokens_input = serializers.IntegerField(required=False, min_value=0)
    tokens_output = serializers.IntegerField(required=False, min_value=0)
    tokens_total = serializers.IntegerField(required=False, min_value=0, help_text="Defaults to input + output.")
    latency_ms = serializers.IntegerField(required=False, min_value=0)
    confidence = serializers.FloatField(required=False, min_value=0, max_value=1)
    outcome = serializers.ChoiceField(choices=sorted(payloads.OUTCOMES), required=False)
    reasoning = serializers.CharField(required=False)
    context_used = serializers.JSONField(required=False, help_text="Retrieved context or precedents the answer used.")
    target_tool = serializers.CharField(required=False, max_length=100)
    language = serializers.CharField(required=False, max_length=35)
    metadata = serializers.DictField(required=False, help_text="Free JSON object, at most MAX_METADATA_BYTES.")
    session_id = serializers.CharField(required=False, max_length=128)
    user_id = serializers.CharField(required=False, max_length=256, help_text="Your end user's id; stored only as a keyed hash.")
    idempotency_key = serializers.CharField(required=False, max_length=200, help_text="Or the Idempotency-Key header.")
    candidates = CandidateInputSerializer(many=True, required=False)
    client_context = ClientContextInputSerializer(required=False)


class BatchInputSerializer(serializers.Serializer):
    items = InteractionInputSerializer(many=True)


class FeedbackInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(payloads.FEEDBACK_KINDS))
    source = serializers.ChoiceField(choices=sorted(payloads.FEEDBACK_SOURCES), required=False, default="user")
    score = serializers.IntegerField(required=False, min_value=1, max_value=5, help_text="kind=score")
    thumb = serializers.ChoiceField(choices=["up", "down"], required=False, help_text="kind=thumb")
    correction = serializers.CharField(required=False, help_text="kind=correction: the corrected output")
    candidate_rank = serializers.IntegerField(required=False, min_value=0, help_text="kind=choice: the chosen candidate")
    reason = serializers.CharField(required=False, help_text="kind=flag (required), or a comment on any kind")


class FeedbackSerializer(serializers.ModelSerializer):
    candidate_rank = serializers.IntegerField(source="candidate.rank", allow_null=True, default=None)

    class Meta:
        model = Feedback
        fields = ["id", "kind", "source", "score", "thumb", "correction", "candidate_rank", "reason", "created_at"]


class CandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Candidate
        fields = ["rank", "text", "confidence", "is_chosen"]


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


def recorded_body(interaction: Interaction, status: str) -> dict[str, Any]:
    return {
        "id": str(interaction.pk),
        "status": status,
        "task": interaction.task,
        "subject": interaction.subject.user_hash if interaction.subject_id else None,
        "model_version": interaction.model_version,
        "idempotency_key": interaction.idempotency_key,
        "created_at": interaction.created_at.isoformat().replace("+00:00", "Z"),
    }


class NotStoredSerializer(serializers.Serializer):
    status = serializers.CharField(default="not_stored")
    detail = serializers.CharField()


class BatchOutputSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    replayed = serializers.IntegerField()
    not_stored = serializers.IntegerField()
    results = serializers.ListField(child=serializers.DictField(), help_text="{index, status, id} per item, in order.")


class SubjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subject
        fields = ["user_hash", "opted_out", "opted_out_at", "suppressed_interactions", "created_at"]


class ErasureRequestSerializer(serializers.ModelSerializer):
    class Meta:
        model = ErasureRequest
        fields = ["id", "subject_hash", "requested_by", "counts", "created_at"]
