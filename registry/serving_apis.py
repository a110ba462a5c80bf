"""Serving doors: /api/v1/generate, the OpenAI-compatible /v1/chat/completions and /v1/models.
Each validates its body, calls registry.serving.service and shapes the answer; the /v1/ doors
answer errors in OpenAI's shape ({"error": {"message", "type", "param", "code"}})."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
from django.conf import settings
from django.core.validators import validate_slug
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from interactions.payloads import ROLES
from learning_platform.errors import DomainError, api_exception_handler

from .serving import ModelNotFound
from .serving.service import Served, models_available, serve

VERSION_HEADER = "X-Model-Version"  # the version that answered, for logs and per-version metrics


class StrictText(serializers.CharField):
    """A JSON string (DRF's CharField also takes numbers), without NUL, at most MAX_TEXT_BYTES."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        value = super().to_internal_value(data)
        if len(value.encode("utf-8", "surrogatepass")) > settings.MAX_TEXT_BYTES:
            raise serializers.ValidationError(f"At most {settings.MAX_TEXT_BYTES} bytes.")
        return value


class StrictInteger(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]


class StrictNumber(serializers.FloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        return super().to_internal_value(data)  # type: ignore[no-any-return]


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=sorted(ROLES))
    content = StrictText(allow_blank=True, trim_whitespace=False, help_text="A string (no content parts)")


def _messages(value: list[dict[str, Any]]) -> list[dict[str, str]]:
    if len(value) > settings.MAX_MESSAGES:
        raise serializers.ValidationError(f"At most {settings.MAX_MESSAGES} messages.")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def _max_tokens(value: int | None) -> int | None:
    if value is not None and value > settings.SERVING_MAX_TOKENS:
        raise serializers.ValidationError(f"At most {settings.SERVING_MAX_TOKENS} (SERVING_MAX_TOKENS).")
    return value


class GenerateInputSerializer(serializers.Serializer):
    task = StrictText(max_length=64, validators=[validate_slug], help_text="A task with data or versions")
    messages = MessageSerializer(many=True, required=False, allow_empty=False)
    input_text = StrictText(required=False, trim_whitespace=False)
    max_tokens = StrictInteger(min_value=1, default=64)
    temperature = StrictNumber(min_value=0, max_value=2, default=0)
    n = StrictInteger(min_value=1, max_value=8, default=1)
    user_id = StrictText(required=False, max_length=256)
    capabilities = serializers.ListField(
        child=StrictText(max_length=64),
        required=False,
        default=list,
        max_length=32,
        help_text="What the request needs; the router weighs it",
    )

    validate_messages = staticmethod(_messages)
    validate_max_tokens = staticmethod(_max_tokens)

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        if not data.get("messages") and "input_text" not in data:
            raise serializers.ValidationError({"messages": ["Send messages or input_text."]})
        data["messages"] = data.get("messages") or [{"role": "user", "content": data["input_text"]}]
        return data


class ChatInputSerializer(serializers.Serializer):
    model = StrictText(
        max_length=200,
        help_text="A task name (its champion answers) or a version name, as GET /v1/models lists",
    )
    messages = MessageSerializer(many=True, allow_empty=False)
    max_tokens = StrictInteger(min_value=1, required=False, allow_null=True)
    max_completion_tokens = StrictInteger(min_value=1, required=False, allow_null=True)
    temperature = StrictNumber(min_value=0, max_value=2, required=False, allow_null=True)
    n = StrictInteger(min_value=1, max_value=8, required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)
    user = StrictText(required=False, max_length=256)

    validate_messages = staticmethod(_messages)
    validate_max_tokens = staticmethod(_max_tokens)
    validate_max_completion_tokens = staticmethod(_max_tokens)


def _validated(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


class GenerateApi(APIView):
    required_scopes = {"POST": "ingest"}

    @extend_schema(
        request=GenerateInputSerializer,
        responses=OpenApiTypes.OBJECT,
        summary="The task's champion answers; the interaction is logged",
    )
    def post(self, request: Request) -> Response:
        values = _validated(GenerateInputSerializer, request)
        served = serve(
            client=request.auth,
            task=values["task"],
            messages=values["messages"],
            max_tokens=values["max_tokens"],
            temperature=values["temperature"],
            n=values["n"],
            user_id=values.get("user_id"),
            capabilities=values["capabilities"],
        )
        usage = {key: served.usage[key] for key in ("prompt_tokens", "completion_tokens")}
        body = {
            "interaction_id": served.interaction_id,
            "version": served.version.name,
            "texts": served.generation.texts,
            "usage": usage,
            "latency_ms": served.generation.latency_ms,
        }
        return Response(body, headers={VERSION_HEADER: served.version.name})


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _openai_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """The platform's handler, with the answer reshaped as OpenAI's error object."""
    response = api_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, serializers.ValidationError):
        param, message = _first_error(exc.detail)
        body = openai_error(
            response.status_code,
            f"{param}: {message}" if param else message,
            param=param,
            code="invalid_value",
        )
        body["error"]["errors"] = response.data.get("errors", response.data)  # every field's messages
    elif isinstance(exc, ModelNotFound):
        body = openai_error(response.status_code, exc.message, param=exc.field, code="model_not_found")
    elif isinstance(exc, DomainError):
        param = next(iter(exc.fields), None)
        body = openai_error(response.status_code, exc.message, param=param, code=exc.code)
    elif isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        body = openai_error(response.status_code, str(exc.detail), code="invalid_api_key")
    elif isinstance(exc, exceptions.APIException):
        body = openai_error(response.status_code, str(exc.detail), code=exc.default_code)
    else:  # Django's Http404 and PermissionDenied, which DRF answers as {"detail"}
        body = openai_error(response.status_code, str(response.data.get("detail", exc)))
    response.data = body
    return response


def _first_error(detail: Any, path: str = "") -> tuple[str | None, str]:
    """The first message in a (nested) DRF error detail and where it is, e.g. messages[1].content
    (a list's errors come as {index: errors} or [errors, ...])."""
    if isinstance(detail, list):
        nested = any(isinstance(value, dict | list) for value in detail)
        detail = dict(enumerate(detail)) if nested else {"non_field_errors": detail[0] if detail else ""}
    if not isinstance(detail, dict):
        return path or None, str(detail)
    for key, value in detail.items():
        if not value:
            continue
        if isinstance(key, int):
            where = f"{path}[{key}]"
        elif key == "non_field_errors":
            where = path
        else:
            where = f"{path}.{key}" if path else str(key)
        return _first_error(value, where)
    return path or None, "Invalid input."


class OpenAIApi(APIView):
    """A door of the OpenAI-compatible API: its errors are OpenAI's error objects."""

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return _openai_exception_handler


class OpenAIModelSerializer(serializers.Serializer):
    id = serializers.CharField(help_text="A task name (its champion answers) or a version name")
    object = serializers.ChoiceField(choices=["model"])
    created = serializers.IntegerField(help_text="Unix time")
    owned_by = serializers.CharField()


class OpenAIModelListSerializer(serializers.Serializer):
    object = serializers.ChoiceField(choices=["list"])
    data = OpenAIModelSerializer(many=True)


class ModelListApi(OpenAIApi):
    required_scopes = {"GET": "ingest"}

    @extend_schema(
        operation_id="v1_models_list",
        responses=OpenAIModelListSerializer,
        summary="OpenAI-compatible: the tasks and versions chat completions can be asked for",
    )
    def get(self, request: Request) -> Response:
        return Response({"object": "list", "data": models_available()})


class ModelDetailApi(OpenAIApi):
    required_scopes = {"GET": "ingest"}

    @extend_schema(responses=OpenAIModelSerializer, summary="OpenAI-compatible: one model of GET /v1/models")
    def get(self, request: Request, model_id: str) -> Response:
        found = next((m for m in models_available() if m["id"] == model_id), None)
        if found is None:
            raise ModelNotFound(f"No task or model named {model_id!r} can be asked for.", field="model")
        return Response(found)


class ChatCompletionsApi(OpenAIApi):
    required_scopes = {"POST": "ingest"}

    @extend_schema(
        request=ChatInputSerializer,
        responses=OpenApiTypes.OBJECT,
        summary="OpenAI-compatible chat completions (also streamed)",
    )
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        values = _validated(ChatInputSerializer, request)
        default_tokens = min(64, settings.SERVING_MAX_TOKENS)
        max_tokens = values.get("max_completion_tokens") or values.get("max_tokens") or default_tokens
        temperature = values.get("temperature")
        served = serve(
            client=request.auth,
            model=values["model"],
            messages=values["messages"],
            max_tokens=max_tokens,
            temperature=1.0 if temperature is None else temperature,
            n=values.get("n") or 1,
            user_id=values.get("user"),
        )
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        headers = {VERSION_HEADER: served.version.name}
        if values["stream"]:
            events = _stream(completion_id, created, served)
            return StreamingHttpResponse(events, content_type="text/event-stream", headers=headers)
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            for i, text in enumerate(served.generation.texts)
        ]
        body = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": served.version.name,
            "choices": choices,
            "usage": served.usage,
            "interaction_id": served.interaction_id,
        }
        return Response(body, headers=headers)


def _stream(completion_id: str, created: int, served: Served) -> Iterator[bytes]:
    """Server-sent events in OpenAI's chunk format (the text is generated first, then sent in pieces)."""
    base = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": served.version.name,
        "interaction_id": served.interaction_id,
    }

    def event(index: int, delta: dict[str, str], finish_reason: str | None) -> bytes:
        chunk = {**base, "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}]}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    for index, text in enumerate(served.generation.texts):
        yield event(index, {"role": "assistant", "content": ""}, None)
        for start in range(0, len(text), 16):
            yield event(index, {"content": text[start : start + 16]}, None)
        yield event(index, {}, "stop")
    yield b"data: [DONE]\n\n"
