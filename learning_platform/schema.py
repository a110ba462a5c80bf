"""The OpenAPI schema's error answers, declared once for every operation (a drf-spectacular
post-processing hook): every door answers its errors in one JSON shape, so the schema says so."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "description": "Every error of the platform's API: a sentence, a machine code and, for invalid input, "
    "the messages per field (for a batch, per item index, then per field).",
    "properties": {
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "e.g. invalid, not_found, conflict, too_large, not_authenticated"},
        "errors": {"type": "object", "additionalProperties": True, "description": "field -> [messages]"},
        "error_id": {"type": "string", "description": "On a 500: the id under which the failure was logged."},
    },
    "required": ["detail", "code"],
}
OPENAI_ERROR = {
    "type": "object",
    "description": "The OpenAI API's error shape, as the official clients expect it on /v1/ paths.",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": "string", "nullable": True},
                "code": {"type": "string", "nullable": True},
            },
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}
DESCRIPTIONS = {
    "400": "Invalid input: nothing was stored.",
    "401": "No API key, or an unknown or inactive one.",
    "403": "The API key lacks the scope this operation needs.",
    "404": "No such object (or not visible to this API key).",
    "409": "The request conflicts with the current state: nothing changed.",
    "413": "The request body is over MAX_REQUEST_BYTES.",
    "429": "Over this API key's rate (API_THROTTLE_*); retry after the Retry-After header's seconds.",
    "500": "An unexpected failure, logged under error_id; nothing was stored half-way.",
    "503": "The server is busy (serving queue full); retry later.",
}
WRITES = {"post", "put", "patch", "delete"}


def _statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    # 404 everywhere: a detail's unknown id, a compared or named version, a task the platform lacks
    statuses = ["400", "401", "403", "404", "429", "500"]
    statuses.append("409")  # e.g. a tainted version refused, a remote server that failed
    if method in WRITES:
        statuses.append("413")
    if path.startswith("/v1/") or path.endswith("/generate"):
        statuses.append("503")
    return statuses


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Post-processing hook: the error answers each operation can give, unless the view says more."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"], schemas["OpenAIError"] = ERROR, OPENAI_ERROR
    for path, operations in result.get("paths", {}).items():
        ref = "#/components/schemas/" + ("OpenAIError" if path.startswith("/v1/") else "Error")
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, method, operation):
                responses.setdefault(
                    status, {"description": DESCRIPTIONS[status], "content": {"application/json": {"schema": {"$ref": ref}}}}
                )
    return result
