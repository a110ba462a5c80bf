"""The platform's domain errors and the one place that turns them into HTTP answers."""

from __future__ import annotations

import logging
import sys
import uuid
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/v1/")


class DomainError(Exception):
    """Base of every app's error type. `code` picks the HTTP status; `fields` maps field -> messages."""

    statuses = {
        "invalid": status.HTTP_400_BAD_REQUEST,
        "not_found": status.HTTP_404_NOT_FOUND,
        "conflict": status.HTTP_409_CONFLICT,
        "too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    }

    def __init__(self, message: str, *, code: str = "invalid", fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.fields = fields or {}

    @property
    def status_code(self) -> int:
        return self.statuses.get(self.code, status.HTTP_400_BAD_REQUEST)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"detail": self.message, "code": self.code}
        if self.fields:
            body["errors"] = self.fields
        return body

    def one_line(self) -> str:
        """The message a management command prints: the first field error included."""
        if not self.fields:
            return self.message
        name, messages = next(iter(self.fields.items()))
        first = messages[0] if isinstance(messages, list) and messages else messages
        return f"{self.message} ({name}: {first})"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every error a DRF view answers, in one shape: {"detail", "code", "errors"?}."""
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is not None and isinstance(exc, exceptions.APIException):
        response.data = _error_body(exc)
    return response


def _error_body(exc: exceptions.APIException) -> dict[str, Any]:
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return {"detail": "The request is invalid; nothing was stored.", "code": "invalid", "errors": fields}
    code = exc.get_codes()
    return {"detail": str(exc.detail), "code": code if isinstance(code, str) else exc.default_code}


# --- Django's error pages: JSON on API paths, the usual HTML pages elsewhere (admin, dashboard) ---


def is_api_path(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIXES)


def json_error(request: HttpRequest, status: int, detail: str, code: str, **extra: Any) -> JsonResponse:
    """An error answered outside DRF's views, in the shape of the path's API: the platform's
    {"detail", "code", ...} under /api/, OpenAI's {"error": {...}} under /v1/ (the official
    clients read that one)."""
    if request.path.startswith("/v1/"):
        kind = "invalid_request_error" if status < 500 else "server_error"
        param = next(iter(extra.get("errors") or {}), None)
        return JsonResponse({"error": {"message": detail, "type": kind, "param": param, "code": code, **extra}}, status=status)
    return JsonResponse({"detail": detail, "code": code, **extra}, status=status)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return json_error(request, 400, "Bad request.", "invalid")
    return defaults.bad_request(request, exception)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api_path(request):
        return json_error(request, 404, f"No endpoint at {request.path}.", "not_found")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """A 500 with an error id, logged here with the traceback so an operator can find it."""
    error_id = uuid.uuid4().hex
    logger.error("Unhandled error %s on %s %s", error_id, request.method, request.path, exc_info=sys.exc_info())
    if is_api_path(request):
        detail = f"Internal server error; quote error id {error_id} when reporting it."
        return json_error(request, 500, detail, "server_error", error_id=error_id)
    return defaults.server_error(request)
