"""The platform's domain errors and the one place that turns them into HTTP answers."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


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
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.status_code)
    return exception_handler(exc, context)
