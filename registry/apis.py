"""HTTP doors of the registry: /api/v1/models/... (admin scope)."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import services
from .models import ActiveModel, LifecycleEvent, ModelVersion


class VersionSerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent.name", allow_null=True, default=None)

    class Meta:
        model = ModelVersion
        fields = ["id", "name", "task", "number", "base_model", "adapter_path", "parent", "training_job", "dataset", "metrics", "status",
                  "tainted", "tainted_reason", "approved_by", "approved_at", "created_at"]  # fmt: skip


class EventSerializer(serializers.ModelSerializer):
    from_version = serializers.CharField(source="from_version.name", allow_null=True, default=None)
    to_version = serializers.CharField(source="to_version.name", allow_null=True, default=None)

    class Meta:
        model = LifecycleEvent
        fields = ["id", "task", "action", "actor", "reason", "from_version", "to_version", "created_at"]


class ActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class RollbackSerializer(ActionSerializer):
    to_version = serializers.CharField(
        required=False, allow_null=True, default=None, help_text="A version name; default: the previous champion"
    )


def _version(name: str) -> ModelVersion:
    version = ModelVersion.objects.filter(name=name).select_related("parent").first()
    if version is None:
        raise services.RegistryError(f"No model version named {name!r}.", code="not_found")
    return version


class VersionListApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str)], responses=VersionSerializer(many=True), summary="Model versions, newest first per task"
    )
    def get(self, request: Request) -> Response:
        versions = ModelVersion.objects.select_related("parent")
        if request.query_params.get("task"):
            versions = versions.filter(task=request.query_params["task"])
        return Response(VersionSerializer(versions, many=True).data)


class VersionDetailApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="A version with its lineage")
    def get(self, request: Request, name: str) -> Response:
        version = _version(name)
        return Response({**VersionSerializer(version).data, "lineage": services.lineage(version=version)})


ACTIONS = {
    "approve": services.version_approve,
    "reject": services.version_reject,
    "promote": services.version_promote,
    "retire": services.version_retire,
}


class VersionActionApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=ActionSerializer, responses=VersionSerializer, summary="approve, reject, promote or retire a version")
    def post(self, request: Request, name: str, action: str) -> Response:
        if action not in ACTIONS:
            raise services.RegistryError(f"Unknown action {action!r}.", code="not_found")
        data = ActionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = ACTIONS[action](version=_version(name), actor=f"api:{request.auth.name}", reason=data.validated_data["reason"])
        return Response(VersionSerializer(version).data)


class RollbackApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(
        request=RollbackSerializer, responses=VersionSerializer, summary="Roll a task back to its previous (or a named) champion"
    )
    def post(self, request: Request, task: str) -> Response:
        data = RollbackSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        target = _version(data.validated_data["to_version"]) if data.validated_data["to_version"] else None
        version = services.version_rollback(
            task=task, actor=f"api:{request.auth.name}", reason=data.validated_data["reason"], to_version=target
        )
        return Response(VersionSerializer(version).data)


class ActiveSerializer(serializers.Serializer):
    task = serializers.CharField()
    version = serializers.CharField(help_text="The champion's version name.")
    revision = serializers.IntegerField(help_text="Bumped by every promotion and rollback of the task.")
    since = serializers.DateTimeField()


class ActiveApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(responses=ActiveSerializer(many=True), summary="The champion of every task")
    def get(self, request: Request) -> Response:
        rows = ActiveModel.objects.select_related("version").order_by("task")
        return Response([{"task": r.task, "version": r.version.name, "revision": r.revision, "since": r.updated_at} for r in rows])


class CompareApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(parameters=[OpenApiParameter("a", str, required=True), OpenApiParameter("b", str, required=True)],
                   responses=OpenApiTypes.OBJECT, summary="Metrics of two versions side by side, with the change in percent")  # fmt: skip
    def get(self, request: Request) -> Response:
        first, second = _version(request.query_params.get("a", "")), _version(request.query_params.get("b", ""))
        return Response(services.versions_compare(first=first, second=second))


class EventListApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str)], responses=EventSerializer(many=True), summary="Lifecycle events, newest first"
    )
    def get(self, request: Request) -> Response:
        events = LifecycleEvent.objects.select_related("from_version", "to_version")
        if request.query_params.get("task"):
            events = events.filter(task=request.query_params["task"])
        return Response(EventSerializer(events[:500], many=True).data)


class PerformanceRowSerializer(serializers.Serializer):
    version = serializers.CharField()
    task = serializers.CharField()
    calls = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField()
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)
    tokens = serializers.IntegerField()
    mean_feedback_score = serializers.FloatField(allow_null=True)
    thumbs_up_share = serializers.FloatField(allow_null=True)
    trust = serializers.FloatField()
    refreshed_at = serializers.DateTimeField()


class PerformanceApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str)],
        responses=PerformanceRowSerializer(many=True),
        summary="Performance per served version, most trusted first, as of each row's refreshed_at (refreshed every minute)",
    )
    def get(self, request: Request) -> Response:
        from .stats import stats_read

        return Response(stats_read(task=request.query_params.get("task", "")))


class VersionExportApi(APIView):
    """The tar is written as it streams. `adapter` is files copied; `merged` and `ollama` first
    merge in a child process (torch never loads in the web process) and hold the request for as
    long as that takes: for big models, run `manage.py export_model` on a worker instead."""

    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=["adapter", "merged", "ollama"], description="Default: adapter")],
        responses={(200, "application/x-tar"): OpenApiTypes.BINARY},
        summary="Download a version as a tar: its adapter, merged weights or an Ollama folder",
    )
    def get(self, request: Request, name: str) -> StreamingHttpResponse:
        from .export import version_export_tar

        fmt = request.query_params.get("format", "adapter")
        chunks = version_export_tar(version=_version(name), fmt=fmt)
        response = StreamingHttpResponse(chunks, content_type="application/x-tar")
        response["Content-Disposition"] = f'attachment; filename="{name}-{fmt}.tar"'
        return response
