"""Validation of incoming interaction and feedback payloads: plain values in, plain values out.

One validator serves the single and the batch endpoint (the batch checks up to 1,000 items per
request, so this is hand-written rather than a DRF serializer: about ten times faster). Errors
come back as {field: [message, ...]}, the shape DRF uses, so clients see one error format.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import orjson

ROLES = frozenset({"system", "user", "assistant", "tool"})
OUTCOMES = frozenset({"success", "failure", "uncertain"})
TASK_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
MAX_INT = 2_147_483_647

INTERACTION_FIELDS = frozenset(
    {
        "task",
        "messages",
        "input_text",
        "structured_prompt",
        "output_text",
        "model_version",
        "tokens_input",
        "tokens_output",
        "tokens_total",
        "latency_ms",
        "confidence",
        "outcome",
        "reasoning",
        "context_used",
        "target_tool",
        "language",
        "metadata",
        "session_id",
        "user_id",
        "idempotency_key",
        "candidates",
        "client_context",
    }
)
FEEDBACK_FIELDS = frozenset({"kind", "source", "score", "thumb", "correction", "candidate_rank", "reason"})
FEEDBACK_KINDS = frozenset({"score", "thumb", "correction", "choice", "flag"})
FEEDBACK_SOURCES = frozenset({"user", "staff", "auto"})


class PayloadError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid payload")
        self.errors = errors


@dataclass(frozen=True)
class Limits:
    max_text_bytes: int = 64 * 1024
    max_metadata_bytes: int = 16 * 1024
    max_messages: int = 256
    max_candidates: int = 16


def utf8_len_over(text: str, limit: int) -> bool:
    """True when text is longer than limit bytes in UTF-8, encoding only when it must."""
    if len(text) > limit:
        return True
    if len(text) * 4 <= limit:
        return False
    return len(text.encode("utf-8")) > limit


def json_size(value: Any) -> int:
    """Bytes of the value as compact UTF-8 JSON."""
    return len(orjson.dumps(value))


def request_hash(item: dict[str, Any]) -> str:
    """A stable digest of a payload, to tell a replay from a different body under one key."""
    return hashlib.sha256(orjson.dumps(item, option=orjson.OPT_SORT_KEYS)).hexdigest()


class _Checker:
    """Collects errors field by field so a client sees every problem at once."""

    def __init__(self, data: dict[str, Any], limits: Limits) -> None:
        self.data = data
        self.limits = limits
        self.errors: dict[str, list[str]] = {}
        self.clean: dict[str, Any] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def text(self, name: str, *, max_bytes: int | None = None, max_chars: int | None = None, blank: bool = True) -> None:
        value = self.data.get(name)
        if value is None:
            return
        if not isinstance(value, str):
            self.fail(name, "Must be a string.")
        elif not blank and not value.strip():
            self.fail(name, "May not be blank.")
        elif max_chars is not None and len(value) > max_chars:
            self.fail(name, f"At most {max_chars} characters.")
        elif max_bytes is not None and utf8_len_over(value, max_bytes):
            self.fail(name, f"At most {max_bytes} bytes.")
        else:
            self.clean[name] = value

    def integer(self, name: str) -> None:
        value = self.data.get(name)
        if value is None:
            return
        if type(value) is not int or not 0 <= value <= MAX_INT:
            self.fail(name, f"Must be an integer between 0 and {MAX_INT}.")
        else:
            self.clean[name] = value

    def unit_float(self, name: str) -> None:
        value = self.data.get(name)
        if value is None:
            return
        if type(value) not in (int, float) or not 0.0 <= value <= 1.0:
            self.fail(name, "Must be a number between 0 and 1.")
        else:
            self.clean[name] = float(value)

    def choice(self, name: str, options: frozenset[str]) -> None:
        value = self.data.get(name)
        if value is None:
            return
        if value not in options:
            self.fail(name, f"Must be one of: {', '.join(sorted(options))}.")
        else:
            self.clean[name] = value

    def json_value(self, name: str, max_bytes: int, *, object_only: bool = False) -> None:
        value = self.data.get(name)
        if value is None:
            return
        if object_only and not isinstance(value, dict):
            self.fail(name, "Must be a JSON object.")
        elif json_size(value) > max_bytes:
            self.fail(name, f"At most {max_bytes} bytes of JSON.")
        else:
            self.clean[name] = value

    def unknown(self, allowed: frozenset[str]) -> None:
        for name in self.data.keys() - allowed:
            self.fail(name, "Unknown field.")


def _messages(check: _Checker) -> None:
    value = check.data.get("messages")
    if value is None:
        return
    if not isinstance(value, list):
        check.fail("messages", "Must be a list of {role, content} objects.")
        return
    if len(value) > check.limits.max_messages:
        check.fail("messages", f"At most {check.limits.max_messages} messages.")
        return
    for index, message in enumerate(value):
        if not isinstance(message, dict) or message.keys() != {"role", "content"}:
            check.fail("messages", f"Item {index}: must be an object with exactly 'role' and 'content'.")
        elif message["role"] not in ROLES:
            check.fail("messages", f"Item {index}: role must be one of: {', '.join(sorted(ROLES))}.")
        elif not isinstance(message["content"], str):
            check.fail("messages", f"Item {index}: content must be a string.")
        elif utf8_len_over(message["content"], check.limits.max_text_bytes):
            check.fail("messages", f"Item {index}: content is over {check.limits.max_text_bytes} bytes.")
    if "messages" not in check.errors:
        check.clean["messages"] = value


def _candidates(check: _Checker) -> None:
    value = check.data.get("candidates")
    if value is None:
        return
    if not isinstance(value, list) or len(value) > check.limits.max_candidates:
        check.fail("candidates", f"Must be a list of at most {check.limits.max_candidates} candidates.")
        return
    cleaned, ranks = [], set()
    for index, candidate in enumerate(value):
        if not isinstance(candidate, dict) or not candidate.keys() <= {"text", "confidence", "rank"}:
            check.fail("candidates", f"Item {index}: must be an object with 'text' and optional 'confidence', 'rank'.")
            continue
        text, confidence, rank = candidate.get("text"), candidate.get("confidence"), candidate.get("rank", index)
        if not isinstance(text, str) or utf8_len_over(text, check.limits.max_text_bytes):
            check.fail("candidates", f"Item {index}: text must be a string of at most {check.limits.max_text_bytes} bytes.")
        elif confidence is not None and (type(confidence) not in (int, float) or not 0 <= confidence <= 1):
            check.fail("candidates", f"Item {index}: confidence must be a number between 0 and 1.")
        elif type(rank) is not int or not 0 <= rank <= 32767 or rank in ranks:
            check.fail("candidates", f"Item {index}: rank must be a unique integer between 0 and 32767.")
        else:
            ranks.add(rank)
            cleaned.append({"text": text, "confidence": confidence, "rank": rank})
    if "candidates" not in check.errors:
        check.clean["candidates"] = cleaned


def _client_context(check: _Checker) -> None:
    value = check.data.get("client_context")
    if value is None:
        return
    if not isinstance(value, dict) or not value.keys() <= {"ip_address", "user_agent"}:
        check.fail("client_context", "Must be an object with optional 'ip_address' and 'user_agent'.")
        return
    ip, agent = value.get("ip_address"), value.get("user_agent") or ""
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            check.fail("client_context", "ip_address is not a valid IPv4 or IPv6 address.")
            return
    if not isinstance(agent, str) or len(agent) > 512:
        check.fail("client_context", "user_agent must be a string of at most 512 characters.")
        return
    check.clean["client_context"] = {"ip_address": ip, "user_agent": agent}


def _derive_input(check: _Checker) -> None:
    """Either messages or input_text is enough; the other is derived from it."""
    if "messages" in check.errors or "input_text" in check.errors:
        return
    messages, text = check.clean.get("messages"), check.clean.get("input_text")
    if not messages and not text:
        check.fail("messages", "Send messages or input_text (at least one, not empty).")
    elif not messages:
        check.clean["messages"] = [{"role": "user", "content": text}]
    elif not text:
        user_turns = [m["content"] for m in messages if m["role"] == "user"]
        check.clean["input_text"] = user_turns[-1] if user_turns else messages[-1]["content"]


def _tokens(check: _Checker) -> None:
    tokens_in, tokens_out = check.clean.get("tokens_input"), check.clean.get("tokens_output")
    total = check.clean.get("tokens_total")
    if total is None and tokens_in is not None and tokens_out is not None:
        check.clean["tokens_total"] = min(tokens_in + tokens_out, MAX_INT)
    elif total is not None and total < (tokens_in or 0) + (tokens_out or 0):
        check.fail("tokens_total", "Must be at least tokens_input + tokens_output.")


def validate_interaction(data: Any, limits: Limits) -> dict[str, Any]:
    """Check one interaction payload and return its cleaned fields, or raise PayloadError."""
    if not isinstance(data, dict):
        raise PayloadError({"non_field_errors": ["Expected a JSON object."]})
    check = _Checker(data, limits)
    check.unknown(INTERACTION_FIELDS)
    task = data.get("task", "default")
    if not isinstance(task, str) or not TASK_RE.match(task):
        check.fail("task", "Must be a slug: lowercase letters, digits, '-' or '_', at most 64 characters.")
    else:
        check.clean["task"] = task
    _messages(check)
    for name in ("input_text", "output_text", "reasoning"):
        check.text(name, max_bytes=limits.max_text_bytes)
    check.text("model_version", max_chars=200)
    check.text("target_tool", max_chars=100)
    check.text("language", max_chars=35)
    check.text("session_id", max_chars=128)
    check.text("user_id", max_chars=256, blank=False)
    check.text("idempotency_key", max_chars=200, blank=False)
    for name in ("tokens_input", "tokens_output", "tokens_total", "latency_ms"):
        check.integer(name)
    check.unit_float("confidence")
    check.choice("outcome", OUTCOMES)
    check.json_value("structured_prompt", limits.max_text_bytes)
    check.json_value("context_used", limits.max_text_bytes)
    check.json_value("metadata", limits.max_metadata_bytes, object_only=True)
    _candidates(check)
    _client_context(check)
    _derive_input(check)
    _tokens(check)
    if check.errors:
        raise PayloadError(check.errors)
    return check.clean


def validate_feedback(data: Any, limits: Limits) -> dict[str, Any]:
    """Check one feedback payload; each kind requires its own field and no other kind's."""
    if not isinstance(data, dict):
        raise PayloadError({"non_field_errors": ["Expected a JSON object."]})
    check = _Checker(data, limits)
    check.unknown(FEEDBACK_FIELDS)
    check.choice("source", FEEDBACK_SOURCES)
    check.text("reason", max_bytes=limits.max_text_bytes)
    kind = data.get("kind")
    if kind not in FEEDBACK_KINDS:
        check.fail("kind", f"Must be one of: {', '.join(sorted(FEEDBACK_KINDS))}.")
        raise PayloadError(check.errors)
    check.clean["kind"] = kind
    required = {"score": "score", "thumb": "thumb", "correction": "correction", "choice": "candidate_rank", "flag": "reason"}
    for name in ("score", "thumb", "correction", "candidate_rank"):
        if name in data and name != required[kind]:
            check.fail(name, f"Not allowed for kind '{kind}'.")
    field = required[kind]
    value = data.get(field)
    if kind == "score" and (type(value) is not int or not 1 <= value <= 5):
        check.fail("score", "Must be an integer from 1 to 5.")
    elif kind == "thumb" and value not in ("up", "down"):
        check.fail("thumb", "Must be 'up' or 'down'.")
    elif kind in ("correction", "flag") and (not isinstance(value, str) or not value.strip()):
        check.fail(field, "May not be blank." if isinstance(value, str) else "Required: a non-empty string.")
    elif kind == "correction" and isinstance(value, str) and utf8_len_over(value, limits.max_text_bytes):
        check.fail("correction", f"At most {limits.max_text_bytes} bytes.")
    elif kind == "choice" and (type(value) is not int or value < 0):
        check.fail("candidate_rank", "Required: the rank of the chosen candidate.")
    else:
        check.clean[field] = value
    if check.errors:
        raise PayloadError(check.errors)
    return check.clean
