from __future__ import annotations

from rest_framework import serializers

from .models import CurationRun, Dataset, KnowledgeGap


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
