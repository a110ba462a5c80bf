from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse


class RequestSizeLimitMiddleware:
    """Answer 413 before reading a body larger than MAX_REQUEST_BYTES.

    DRF reads the request stream itself, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE alone would
    not stop a large JSON body from being parsed.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse({"detail": "Content-Length is not a number.", "code": "invalid"}, status=400)
        if length > settings.MAX_REQUEST_BYTES:
            return JsonResponse(
                {"detail": f"Request body is {length} bytes; the limit is {settings.MAX_REQUEST_BYTES}.", "code": "too_large"},
                status=413,
            )
        return self.get_response(request)
