"""Serving doors: /api/v1/generate and the OpenAI-compatible /v1/chat/completions. Both answer
with the task's champion and log the interaction (with its id in the answer, for feedback)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
from django.conf import settings
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from interactions import services as interactions
from interactions.serializers import MessageSerializer

from . import serving
from .models import ModelVersion
from .signals import generation_served


class GenerateInputSerializer(serializers.Serializer):
    task = serializers.SlugField()
    messages = MessageSerializer(many=True, required=False)
    input_text = serializers.CharField(required=False, trim_whitespace=False)
    max_tokens = serializers.IntegerField(min_value=1, default=64)
    temperature = serializers.FloatField(min_value=0, max_value=2, default=0)
    n = serializers.IntegerField(min_value=1, max_value=8, default=1)
    user_id = serializers.CharField(required=False, max_length=256)
    capabilities = serializers.ListField(
        child=serializers.CharField(), required=False, default=list, help_text="What the request needs; the router weighs it"
    )

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("messages") and not data.get("input_text"):
            raise serializers.ValidationError({"messages": ["Send messages or input_text."]})
        if data["max_tokens"] > settings.SERVING_MAX_TOKENS:
            raise serializers.ValidationError({"max_tokens": [f"At most {settings.SERVING_MAX_TOKENS}."]})
        data["messages"] = [dict(m) for m in data.get("messages") or [{"role": "user", "content": data["input_text"]}]]
        return data


class ChatInputSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="A task name (its champion answers) or a version name")
    messages = MessageSerializer(many=True)
    max_tokens = serializers.IntegerField(min_value=1, required=False, default=64)
    max_completion_tokens = serializers.IntegerField(min_value=1, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False, default=1.0)
    n = serializers.IntegerField(min_value=1, max_value=8, required=False, default=1)
    stream = serializers.BooleanField(required=False, default=False)
    user = serializers.CharField(required=False, max_length=256)


def _log(
    request: Request,
    *,
    task: str,
    version: ModelVersion,
    messages: list[dict[str, str]],
    result: serving.Generation,
    user_id: str | None,
    max_tokens: int,
    temperature: float,
) -> str | None:
    payload: dict[str, Any] = {
        "task": task, "messages": messages, "output_text": result.texts[0], "model_version": result.version,
        "tokens_input": result.prompt_tokens, "tokens_output": sum(result.completion_tokens), "latency_ms": result.latency_ms,
    }  # fmt: skip
    if len(result.texts) > 1:
        payload["candidates"] = [{"text": text, "rank": rank} for rank, text in enumerate(result.texts)]
    if user_id:
        payload["user_id"] = user_id
    recorded = interactions.interaction_record(client=request.auth, payload=payload)
    interaction_id = str(recorded.interaction.pk) if recorded.interaction else None
    generation_served.send(
        sender=ModelVersion, task=task, version=version, interaction_id=interaction_id, client=request.auth, user_id=user_id,
        max_tokens=max_tokens, temperature=temperature,
    )  # fmt: skip
    return interaction_id


class GenerateApi(APIView):
    required_scopes = {"POST": "ingest"}

    @extend_schema(
        request=GenerateInputSerializer, responses=OpenApiTypes.OBJECT, summary="The task's champion answers; the interaction is logged"
    )
    def post(self, request: Request) -> Response:
        data = GenerateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = serving.route(values["task"], values["capabilities"], client=request.auth, user_id=values.get("user_id"))
        result = serving.generate(
            version=version, messages=values["messages"], max_tokens=values["max_tokens"], temperature=values["temperature"], n=values["n"]
        )
        interaction_id = _log(
            request, task=values["task"], version=version, messages=values["messages"], result=result, user_id=values.get("user_id"),
            max_tokens=values["max_tokens"], temperature=values["temperature"],
        )  # fmt: skip
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": sum(result.completion_tokens)}
        return Response(
            {
                "interaction_id": interaction_id,
                "version": result.version,
                "texts": result.texts,
                "usage": usage,
                "latency_ms": result.latency_ms,
            }
        )


class ChatCompletionsApi(APIView):
    required_scopes = {"POST": "ingest"}

    @extend_schema(request=ChatInputSerializer, responses=OpenApiTypes.OBJECT, summary="OpenAI-compatible chat completions (also streamed)")
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        data = ChatInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        version = serving.resolve(values["model"], client=request.auth, user_id=values.get("user"))
        messages = [dict(m) for m in values["messages"]]
        max_tokens = min(values.get("max_completion_tokens") or values["max_tokens"], settings.SERVING_MAX_TOKENS)
        result = serving.generate(
            version=version, messages=messages, max_tokens=max_tokens, temperature=values["temperature"], n=values["n"]
        )
        interaction_id = _log(
            request, task=version.task, version=version, messages=messages, result=result, user_id=values.get("user"),
            max_tokens=max_tokens, temperature=values["temperature"],
        )  # fmt: skip
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if values["stream"]:
            return StreamingHttpResponse(_stream(completion_id, created, result, interaction_id), content_type="text/event-stream")
        usage = {"prompt_tokens": result.prompt_tokens, "completion_tokens": sum(result.completion_tokens)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} for i, text in enumerate(result.texts)
        ]
        return Response({"id": completion_id, "object": "chat.completion", "created": created, "model": result.version, "choices": choices,
                         "usage": usage, "interaction_id": interaction_id})  # fmt: skip


def _stream(completion_id: str, created: int, result: serving.Generation, interaction_id: str | None) -> Iterator[bytes]:
    """Server-sent events in OpenAI's chunk format (the text is generated first, then sent in pieces)."""
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": result.version,
        "interaction_id": interaction_id,
    }
    for index, text in enumerate(result.texts):
        yield (
            b"data: "
            + orjson.dumps({**base, "choices": [{"index": index, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
            + b"\n\n"
        )
        for start in range(0, len(text), 16):
            chunk = {"index": index, "delta": {"content": text[start : start + 16]}, "finish_reason": None}
            yield b"data: " + orjson.dumps({**base, "choices": [chunk]}) + b"\n\n"
        yield b"data: " + orjson.dumps({**base, "choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]}) + b"\n\n"
    yield b"data: [DONE]\n\n"
