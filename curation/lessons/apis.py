"""HTTP doors of lessons and memory: per-task settings (admin scope), a user's memory (the
client's own subjects only)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from interactions.services import subject_find

from .memory import person_forget, person_memory
from .models import LessonSettings
from .services import SETTINGS_FIELDS, lesson_settings_for, lesson_settings_update


class LessonSettingsSerializer(serializers.ModelSerializer):
    class Meta:
        model = LessonSettings
        fields = ["task", *SETTINGS_FIELDS, "index_version"]
        read_only_fields = ["task", "index_version"]


class LessonSettingsApi(APIView):
    required_scopes = {"GET": "admin", "PUT": "admin"}

    @extend_schema(responses=LessonSettingsSerializer, summary="Lessons and memory at serving for a task")
    def get(self, request: Request, task: str) -> Response:
        return Response(LessonSettingsSerializer(lesson_settings_for(task)).data)

    @extend_schema(request=LessonSettingsSerializer, responses=LessonSettingsSerializer, summary="Change them")
    def put(self, request: Request, task: str) -> Response:
        data = LessonSettingsSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        row = lesson_settings_update(task=task, values=dict(data.validated_data))
        return Response(LessonSettingsSerializer(row).data)


class SubjectMemoryApi(APIView):
    required_scopes = {"GET": "read", "DELETE": "ingest"}

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="This user's persona (facets, each change and its cause) and memories")
    def get(self, request: Request, user_id: str) -> Response:
        return Response(person_memory(subject=subject_find(client=request.auth, user_id=user_id)))

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Forget this user's persona and memories")
    def delete(self, request: Request, user_id: str) -> Response:
        return Response(person_forget(subject_id=subject_find(client=request.auth, user_id=user_id).pk))
