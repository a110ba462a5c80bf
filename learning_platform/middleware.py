from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from .errors import is_api_path, json_error
from .jsoncheck import control_message


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
        # an import upload is streamed to a file, not parsed in memory: it has a limit of its own
        upload = request.path == "/api/v1/imports" and request.method == "POST"
        limit = settings.IMPORT_MAX_UPLOAD_BYTES if upload else settings.MAX_REQUEST_BYTES
        if length > limit:
            return JsonResponse(
                {"detail": f"Request body is {length} bytes; the limit is {limit}.", "code": "too_large"},
                status=413,
            )
        return self.get_response(request)


class ApiInputMiddleware:
    """Answer 400 on an API path or query parameter holding a control character (U+0000, which
    PostgreSQL cannot store or compare, and the other C0 characters but tab, LF and CR), before
    any view, filter or paginator sees it: one check for every list endpoint."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if is_api_path(request):
            refused = self._refusal(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def _refusal(request: HttpRequest) -> HttpResponse | None:
        places = [("path", request.path)]
        places += [(name, text) for name, values in request.GET.lists() for text in (name, *values)]
        for where, text in places:
            message = control_message(text)
            if message is not None:
                detail = f"The {'path' if where == 'path' else 'query parameter ' + repr(where)} is refused: {message}"
                return json_error(request, 400, detail, "invalid", errors={where: [message]})
        return None
