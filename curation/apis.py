"""HTTP doors of curation. Datasets and gaps span every client's data: admin scope only."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, serializers, services


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
