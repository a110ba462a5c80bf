from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .jsoncheck import check_json


class FastJSONParser(JSONParser):
    """DRF's JSON parser on orjson: several times faster on 1,000-item batches, and strict
    (NaN and Infinity, which JSON does not allow, are refused).

    It is also the door every JSON body passes, so it refuses what no endpoint can store: a
    body nested deeper than MAX_JSON_DEPTH, and control characters (U+0000 above all, which
    PostgreSQL cannot store) in any string or object key. One iterative walk per body.
    """

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if "depth limit" not in str(exc):
                raise ParseError(f"JSON parse error - {exc}") from None
            value, problem = None, ("non_field_errors", _too_deep())  # past orjson's own limit (1024)
        else:
            problem = check_json(value, max_depth=settings.MAX_JSON_DEPTH, raw=raw)
        if problem is not None:
            from .errors import DomainError  # errors imports DRF's views, which import this module

            where, message = problem
            raise DomainError(f"The JSON body is refused ({where}): {message}", fields={where: [message]})
        return value


def _too_deep() -> str:
    return f"JSON nested deeper than {settings.MAX_JSON_DEPTH} levels (MAX_JSON_DEPTH)."
