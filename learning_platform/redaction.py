"""Log lines never show an end user's id: `/subjects/<user_id>` paths and `user_id=` query
values become `{user_id}`, in gunicorn's access and error logs (learning_platform.gunicorn_logger)
and in every record the platform's own handlers write (Django's "Not Found: /api/v1/subjects/...")."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_plus

USER_ID = "{user_id}"
# the path segment after /subjects/ (up to the next /, ?, #, quote or space)
_SUBJECT_PATH = re.compile(r"(/subjects/)[^/?#\s\"']+")
# a query parameter (name=value) after ?, & or ;
_PARAMETER = re.compile(r"([?&;])([^=&;#\s\"'?]+)=([^&;#\s\"']*)")
_USER_PARAMETERS = {"user_id"}


def _parameter(match: re.Match[str]) -> str:
    if unquote_plus(match[2]) not in _USER_PARAMETERS:
        return match[0]
    return f"{match[1]}{match[2]}={USER_ID}"


def redact(text: str) -> str:
    if "subjects/" in text:
        text = _SUBJECT_PATH.sub(r"\1" + USER_ID, text)
    if "=" in text:
        text = _PARAMETER.sub(_parameter, text)
    return text


class RedactFilter(logging.Filter):
    """Rewrites a record's message (its arguments merged in) with the user ids taken out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True
