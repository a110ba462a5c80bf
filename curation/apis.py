"""HTTP doors of curation. Datasets and gaps span every client's data: admin scope only."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers as drf_serializers
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, serializers, services
from .importers import import_run_start, import_upload_save
from .importers.formats import FORMATS
from .models import ImportRun


class RunCreateApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=serializers.RunInputSerializer, responses={202: serializers.RunSerializer}, summary="Start a curation run")
    def post(self, request: Request) -> Response:
        data = serializers.RunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.curation_run_start(**data.validated_data, requested_by=f"api:{request.auth.name}")
        return Response(serializers.RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunDetailApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(responses=serializers.RunSerializer, summary="A curation run: status, progress, counts per stage")
    def get(self, request: Request, run_id: int) -> Response:
        return Response(serializers.RunSerializer(selectors.run_get(run_id=run_id)).data)


class DatasetListApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(parameters=[OpenApiParameter("task", str)], responses=serializers.DatasetSerializer(many=True), summary="Datasets")
    def get(self, request: Request) -> Response:
        datasets = selectors.dataset_list(task=request.query_params.get("task", ""))
        return Response(serializers.DatasetSerializer(datasets, many=True).data)


class DatasetDetailApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(responses=serializers.DatasetSerializer, summary="One dataset with its stats")
    def get(self, request: Request, dataset_id: int) -> Response:
        return Response(serializers.DatasetSerializer(selectors.dataset_get(dataset_id=dataset_id)).data)


class DatasetExportApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("format", str, description="messages, alpaca, sharegpt, prompt_completion, dpo, kto"),
                    OpenApiParameter("split", str, description="train (default), eval or all")],
        responses={(200, "application/x-ndjson"): OpenApiTypes.STR},
        summary="Stream a frozen dataset as JSON Lines",
    )  # fmt: skip
    def get(self, request: Request, dataset_id: int) -> StreamingHttpResponse:
        dataset = selectors.dataset_get(dataset_id=dataset_id)
        fmt, lines = selectors.dataset_export(
            dataset=dataset, fmt=request.query_params.get("format", ""), split=request.query_params.get("split", "train")
        )
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{dataset.task}-{dataset.name}-v{dataset.version}-{fmt}.jsonl"'
        return response


class GapListApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str)], responses=serializers.GapSerializer(many=True), summary="Knowledge gaps, largest first"
    )
    def get(self, request: Request) -> Response:
        return Response(serializers.GapSerializer(selectors.gap_list(task=request.query_params.get("task", "")), many=True).data)


class ConflictCursor(CursorPagination):
    ordering = "id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class ConflictListApi(APIView):
    required_scopes = {"GET": "admin"}

    @extend_schema(
        parameters=[OpenApiParameter("task", str), OpenApiParameter("status", str, description="open, resolved or empty (both)")],
        responses=serializers.ConflictPageSerializer,
        summary="Conflicts: near-identical prompts with contradicting answers, both examples side by side",
    )
    def get(self, request: Request) -> Response:
        conflicts = selectors.conflict_list(task=request.query_params.get("task", ""), status=request.query_params.get("status", ""))
        paginator = ConflictCursor()
        page = paginator.paginate_queryset(conflicts, request, view=self)
        return paginator.get_paginated_response(serializers.ConflictSerializer(page, many=True).data)


class ConflictResolveApi(APIView):
    required_scopes = {"POST": "admin"}

    @extend_schema(request=serializers.ConflictResolveSerializer, responses=serializers.ConflictSerializer, summary="Resolve a conflict")
    def post(self, request: Request, conflict_id: int) -> Response:
        data = serializers.ConflictResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        keep, by = data.validated_data["keep"], f"api:{request.auth.name}"
        conflict = services.conflict_resolve(conflict_id=conflict_id, keep=keep, resolved_by=by)
        return Response(serializers.ConflictSerializer(selectors.conflict_list().get(pk=conflict.pk)).data)


class ImportInputSerializer(drf_serializers.Serializer):
    file = drf_serializers.FileField(help_text="JSON Lines, one record a line (any size: streamed to disk).")
    task = drf_serializers.SlugField(max_length=64)
    format = drf_serializers.ChoiceField(choices=["auto", *FORMATS], default="auto")
    source = drf_serializers.ChoiceField(choices=["staff", "user"], default="staff")
    dry_run = drf_serializers.BooleanField(default=False)


class ImportRunSerializer(drf_serializers.ModelSerializer):
    class Meta:
        model = ImportRun
        fields = [
            "id", "origin", "task", "format", "source", "dry_run", "file_name", "status", "progress", "counts", "refused",
            "error", "created_at", "started_at", "finished_at",
        ]  # fmt: skip


class ImportCreateApi(APIView):
    """The upload is spooled to a temporary file by Django, copied under ARTIFACTS_DIR/imports
    and read by a django-q2 worker line by line; poll GET imports/{id} for the outcome."""

    required_scopes = {"POST": "ingest"}
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": ImportInputSerializer},
        responses={202: ImportRunSerializer},
        summary="Import a JSONL data set as interactions with the feedback each record implies",
    )
    def post(self, request: Request) -> Response:
        data = ImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        path = import_upload_save(upload=values["file"])
        run = import_run_start(
            client=request.auth, task=values["task"], path=str(path), fmt=values["format"], source=values["source"],
            dry_run=values["dry_run"], file_name=values["file"].name[:255], requested_by=f"api:{request.auth.name}",
        )  # fmt: skip
        return Response(ImportRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class ImportDetailApi(APIView):
    required_scopes = {"GET": "ingest"}

    @extend_schema(responses=ImportRunSerializer, summary="An import: status, progress, counts, refused lines with reasons")
    def get(self, request: Request, run_id: int) -> Response:
        run = ImportRun.objects.filter(pk=run_id, client=request.auth).first()
        if run is None:
            raise services.CurationError("No such import.", code="not_found")
        return Response(ImportRunSerializer(run).data)
