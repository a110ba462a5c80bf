from __future__ import annotations

from rest_framework import serializers

from .models import CurationRun, Dataset, DuplicateConflict, KnowledgeGap, TrainingExample


class RunInputSerializer(serializers.Serializer):
    task = serializers.SlugField(required=False, allow_blank=True, default="", help_text="Empty: every task.")
    since = serializers.DateTimeField(required=False, allow_null=True, default=None, help_text="Empty: since the last run.")


class RunSerializer(serializers.ModelSerializer):
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    log = serializers.CharField(source="log_tail", read_only=True, help_text="The last lines of the run's log.")

    class Meta:
        model = CurationRun
        fields = [
            "id", "task", "since", "status", "progress", "counts", "stage_seconds", "watermark", "error", "log",
            "attempts", "created_at", "started_at", "finished_at", "heartbeat_at", "duration_seconds", "requested_by",
        ]  # fmt: skip


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["id", "task", "name", "version", "kind", "status", "filters", "manifest_hash", "stats", "tainted", "tainted_reason",
                  "created_by", "frozen_by", "created_at", "frozen_at"]  # fmt: skip


class GapSerializer(serializers.ModelSerializer):
    class Meta:
        model = KnowledgeGap
        fields = ["id", "task", "representative", "size", "examples", "created_at"]


class ConflictExampleSerializer(serializers.ModelSerializer):
    in_datasets = serializers.SerializerMethodField(help_text="Whether datasets made now would select it (not a duplicate, not rejected).")

    class Meta:
        model = TrainingExample
        fields = ["id", "key", "kind", "prompt", "target", "rejected", "label", "tier", "quality_score", "review_status", "in_datasets"]

    def get_in_datasets(self, obj: TrainingExample) -> bool:
        return obj.duplicate_of_id is None and obj.tier != "reject"


class ConflictSerializer(serializers.ModelSerializer):
    example_a = ConflictExampleSerializer(read_only=True)
    example_b = ConflictExampleSerializer(read_only=True)

    class Meta:
        model = DuplicateConflict
        fields = [
            "id", "task", "kind", "reason", "similarity", "status", "kept", "resolved_by", "resolved_at", "created_at", "updated_at",
            "example_a", "example_b",
        ]  # fmt: skip


class ConflictPageSerializer(serializers.Serializer):
    """One page of the cursor-paginated list: follow `next` until it is null."""

    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last one.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first one.")
    results = ConflictSerializer(many=True)


class ConflictResolveSerializer(serializers.Serializer):
    keep = serializers.ChoiceField(choices=DuplicateConflict.Keep.choices, help_text="a, b, both or neither.")
