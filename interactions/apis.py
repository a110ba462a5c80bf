"""HTTP doors of the interactions app: validate, call one service or selector, serialize."""

from __future__ import annotations

from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from . import selectors, serializers, services
from .selectors import InteractionFilter

NOT_STORED_DETAIL = "The subject opted out: the interaction was counted, not stored."


class InteractionCursor(CursorPagination):
    ordering = "-created_at"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


def _record_response(result: services.RecordResult) -> Response:
    if result.status == services.NOT_STORED:
        return Response({"status": services.NOT_STORED, "detail": NOT_STORED_DETAIL}, status=status.HTTP_202_ACCEPTED)
    code = status.HTTP_201_CREATED if result.status == services.CREATED else status.HTTP_200_OK
    return Response(serializers.recorded_body(result.interaction, result.status, result.candidates), status=code)


class InteractionListCreateApi(APIView):
    required_scopes = {"GET": "read", "POST": "ingest"}

    @extend_schema(
        request=serializers.InteractionInputSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", OpenApiTypes.STR, OpenApiParameter.HEADER)],
        responses={201: serializers.RecordedSerializer, 200: serializers.RecordedSerializer, 202: serializers.NotStoredSerializer},
        summary="Record one interaction (a replay with the same Idempotency-Key answers 200 with the original)",
    )
    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key", "").strip()
        result = services.interaction_record(client=request.auth, payload=request.data, idempotency_key=key)
        return _record_response(result)

    @extend_schema(
        operation_id="api_v1_interactions_list",
        filters=True,
        responses=serializers.InteractionPageSerializer,
        summary="List interactions, newest first",
    )
    def get(self, request: Request) -> Response:
        queryset = selectors.interaction_list(client=request.auth, params=request.query_params, request=request)
        paginator = InteractionCursor()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializers.InteractionSerializer(page, many=True).data)

    filterset_class = InteractionFilter  # for the schema's query parameters


class InteractionBatchApi(APIView):
    required_scopes = {"POST": "ingest"}

    @extend_schema(
        request=serializers.BatchInputSerializer,
        responses={201: serializers.BatchOutputSerializer, 200: serializers.BatchOutputSerializer},
        summary="Record up to BATCH_MAX_ITEMS interactions, all or nothing",
    )
    def post(self, request: Request) -> Response:
        data = request.data
        if not isinstance(data, dict) or data.keys() != {"items"}:
            raise services.InteractionError('Send {"items": [...]}.', fields={"items": ["Required; no other fields."]})
        result = services.interaction_record_batch(client=request.auth, items=data["items"])
        body: dict[str, Any] = {name: result.count(name) for name in (services.CREATED, services.REPLAYED, services.NOT_STORED)}
        body["results"] = result.results
        return Response(body, status=status.HTTP_201_CREATED if body[services.CREATED] else status.HTTP_200_OK)


class InteractionDetailApi(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(responses=serializers.InteractionSerializer, summary="One interaction with its feedback and candidates")
    def get(self, request: Request, interaction_id: str) -> Response:
        interaction = services.interaction_get(client=request.auth, interaction_id=interaction_id)
        return Response(serializers.InteractionSerializer(interaction).data)


class FeedbackCreateApi(APIView):
    required_scopes = {"POST": "ingest"}

    @extend_schema(request=serializers.FeedbackInputSerializer, responses={201: serializers.FeedbackSerializer}, summary="Add feedback")
    def post(self, request: Request, interaction_id: str) -> Response:
        feedback = services.feedback_create(client=request.auth, interaction_id=interaction_id, payload=request.data)
        return Response(serializers.FeedbackSerializer(feedback).data, status=status.HTTP_201_CREATED)


class SubjectOptOutApi(APIView):
    required_scopes = {"POST": "ingest"}

    @extend_schema(request=None, responses=serializers.SubjectSerializer, summary="Stop storing this user's interactions")
    def post(self, request: Request, user_id: str) -> Response:
        subject = services.subject_opt_out(client=request.auth, user_id=user_id)
        return Response(serializers.SubjectSerializer(subject).data)


class SubjectExportApi(APIView):
    required_scopes = {"GET": "read"}

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT}, summary="Everything stored about this user (GDPR access)")
    def get(self, request: Request, user_id: str) -> StreamingHttpResponse:
        chunks = selectors.subject_export(client=request.auth, user_id=user_id)
        return StreamingHttpResponse(chunks, content_type="application/json")


class SubjectEraseApi(APIView):
    required_scopes = {"DELETE": "admin"}

    @extend_schema(responses={200: serializers.ErasureRequestSerializer}, summary="Erase this user's data everywhere (GDPR erasure)")
    def delete(self, request: Request, user_id: str) -> Response:
        erasure = services.subject_erase(client=request.auth, user_id=user_id, requested_by=f"api:{request.auth.name}")
        return Response(serializers.ErasureRequestSerializer(erasure).data)
