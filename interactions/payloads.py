"""Validation of incoming interaction and feedback payloads: plain values in, plain values out.

One validator serves the single and the batch endpoint (the batch checks up to 1,000 items per
request, so this is hand-written rather than a DRF serializer: about ten times faster). Errors
come back as {field: [message, ...]}, the shape DRF uses, so clients see one error format.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from learning_platform.jsoncheck import CONTROL_CHARS, check_json, control_message, may_hold_control_chars

ROLES = frozenset({"system", "user", "assistant", "tool"})
OUTCOMES = frozenset({"success", "failure", "uncertain"})
FEEDBACK_KINDS = frozenset({"score", "thumb", "correction", "choice", "flag"})
FEEDBACK_SOURCES = frozenset({"user", "staff", "auto"})
THUMBS = frozenset({"up", "down"})
TASK_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_INT = 2_147_483_647
MAX_RANK = 32_767
MAX_ID = 2**63 - 1
MAX_JSON_NESTING = 254  # what orjson writes; the API's door (MAX_JSON_DEPTH) is stricter


@dataclass(frozen=True)
class Field:
    """One field of a payload: what the validator checks and what the OpenAPI schema says
    (serializers.py builds the documenting serializers from these tables, so the two agree).

    kind: slug, text, key (an idempotency key: no control character at all), integer,
    unit_float, choice, json, ip, list (of `item` objects) or object (with `item` fields).
    max_bytes and max_items name a `Limits` attribute (a setting, upper-cased).
    """

    kind: str
    help: str = ""
    required: bool = False
    max_chars: int | None = None
    max_bytes: str | None = None
    max_items: str | None = None
    options: frozenset[str] = frozenset()
    blank: bool = True
    minimum: int = 0
    maximum: int = MAX_INT
    default: Any = None
    item: dict[str, Field] | None = None


_TEXT = "max_text_bytes"
MESSAGE_SPEC = {
    "role": Field("choice", required=True, options=ROLES),
    "content": Field("text", required=True, max_bytes=_TEXT),
}
CANDIDATE_SPEC = {
    "text": Field("text", required=True, max_bytes=_TEXT),
    "confidence": Field("unit_float"),
    "rank": Field(
        "integer",
        maximum=MAX_RANK,
        help="0-based. Defaults to the position in the list: the first candidate is rank 0.",
    ),
}
CLIENT_CONTEXT_SPEC = {
    "ip_address": Field("ip", help="The end user's IP (kept CLIENT_CONTEXT_RETENTION_DAYS)."),
    "user_agent": Field("text", max_chars=512),
}
INTERACTION_SPEC: dict[str, Field] = {
    "task": Field("slug", "The model slot, e.g. support.", max_chars=64, default="default"),
    "messages": Field("list", "The input as chat messages; or send input_text.", max_items="max_messages", item=MESSAGE_SPEC),
    "input_text": Field("text", "The plain input; derived from messages if absent.", max_bytes=_TEXT),
    "structured_prompt": Field("json", "Any JSON.", max_bytes=_TEXT),
    "output_text": Field("text", max_bytes=_TEXT),
    "model_version": Field("text", max_chars=200),
    "tokens_input": Field("integer"),
    "tokens_output": Field("integer"),
    "tokens_total": Field("integer", "Defaults to input + output."),
    "latency_ms": Field("integer"),
    "confidence": Field("unit_float"),
    "outcome": Field("choice", options=OUTCOMES),
    "reasoning": Field("text", max_bytes=_TEXT),
    "context_used": Field("json", "Retrieved context or precedents the answer used.", max_bytes=_TEXT),
    "target_tool": Field("text", max_chars=100),
    "language": Field("text", max_chars=35),
    "metadata": Field("object", "Free JSON object.", max_bytes="max_metadata_bytes"),
    "session_id": Field("text", max_chars=128),
    "user_id": Field("text", "Your end user's id; stored only as a keyed hash.", max_chars=256, blank=False),
    "idempotency_key": Field("key", "Or the Idempotency-Key header.", max_chars=200, blank=False),
    "candidates": Field(
        "list",
        "Several answers shown; choice feedback names one by its id or 0-based rank.",
        max_items="max_candidates",
        item=CANDIDATE_SPEC,
    ),
    "client_context": Field("object", "Kept apart, purged after the retention period.", item=CLIENT_CONTEXT_SPEC),
}
FEEDBACK_SPEC: dict[str, Field] = {
    "kind": Field("choice", required=True, options=FEEDBACK_KINDS),
    "source": Field("choice", options=FEEDBACK_SOURCES, default="user"),
    "score": Field("integer", "kind=score: 1 (bad) to 5 (good).", minimum=1, maximum=5),
    "thumb": Field("choice", "kind=thumb.", options=THUMBS),
    "correction": Field("text", "kind=correction: the corrected output.", max_bytes=_TEXT, blank=False),
    "candidate_id": Field(
        "integer",
        "kind=choice: the chosen candidate's id, as the POST answer and the interaction list it. Send this or candidate_rank.",
        minimum=1,
        maximum=MAX_ID,
    ),
    "candidate_rank": Field(
        "integer",
        "kind=choice: the chosen candidate's rank, 0-based (the first candidate sent is rank 0 unless "
        "the candidates carried their own ranks). Send this or candidate_id.",
        maximum=MAX_RANK,
    ),
    "reason": Field("text", "kind=flag (required), or a comment on any kind.", max_bytes=_TEXT),
}
# The field each kind requires (a choice: one of two), and may carry besides source and reason.
KIND_FIELDS = {
    "score": ("score",),
    "thumb": ("thumb",),
    "correction": ("correction",),
    "choice": ("candidate_id", "candidate_rank"),
    "flag": ("reason",),
}
INTERACTION_FIELDS = frozenset(INTERACTION_SPEC)
FEEDBACK_FIELDS = frozenset(FEEDBACK_SPEC)


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

    def fields(self, checks: dict[str, _Check]) -> None:
        """Check each simple field sent (lists and objects have their own checks). Walks the
        payload, not the table: fields not sent cost nothing."""
        limits, clean = self.limits, self.clean
        for name, value in self.data.items():
            check = checks.get(name)
            if check is None or value is None:
                continue
            problem = check(value, limits)
            if problem is None:
                clean[name] = value
            else:
                self.fail(name, problem)

    def unknown(self, allowed: frozenset[str]) -> None:
        for name in self.data.keys() - allowed:
            self.fail(name if control_message(name) is None else "non_field_errors", "Unknown field.")


def _text_problem(value: Any, spec: Field, limits: Limits) -> str | None:
    if not isinstance(value, str):
        return "Must be a string."
    if not spec.blank and not value.strip():
        return "May not be blank."
    if spec.max_chars is not None and len(value) > spec.max_chars:
        return f"At most {spec.max_chars} characters."
    if spec.max_bytes is not None and utf8_len_over(value, limit := getattr(limits, spec.max_bytes)):
        return f"At most {limit} bytes."
    if spec.kind == "key" and not value.isprintable():
        return "May hold printable characters only (no tab, newline or other control character)."
    return None if CONTROL_CHARS.search(value) is None else control_message(value)


def _json_problem(value: Any, spec: Field, limits: Limits) -> str | None:
    if spec.kind == "object" and not isinstance(value, dict):
        return "Must be a JSON object."
    limit = getattr(limits, spec.max_bytes or _TEXT)
    try:
        dumped = orjson.dumps(value)
    except orjson.JSONEncodeError:  # nested deeper than orjson writes (254): the parser's limit is lower
        return "Nested too deeply."
    if len(dumped) > limit:
        return f"At most {limit} bytes of JSON."
    # The API's parser refused control characters already; callers in Python get the same rule
    # (orjson wrote it, so it is no deeper than MAX_JSON_NESTING: only the strings need a look).
    problem = check_json(value, max_depth=MAX_JSON_NESTING) if may_hold_control_chars(dumped) else None
    return problem[1] if problem else None


_Check = Callable[[Any, Limits], "str | None"]


def _compile(spec: Field) -> _Check:
    """The check of one simple field, specialised once per table entry (the batch hot path)."""
    kind, low, high = spec.kind, spec.minimum, spec.maximum
    if kind in ("text", "key"):
        return lambda value, limits: _text_problem(value, spec, limits)
    if kind == "integer":
        wrong = f"Must be an integer from {low} to {high}."
        return lambda value, limits: None if type(value) is int and low <= value <= high else wrong
    if kind == "unit_float":
        return lambda value, limits: None if type(value) in (int, float) and 0 <= value <= 1 else "Must be a number between 0 and 1."
    if kind == "choice":
        options, wrong = spec.options, f"Must be one of: {', '.join(sorted(spec.options))}."
        return lambda value, limits: None if isinstance(value, str) and value in options else wrong
    if kind == "slug":
        wrong = "Must be a slug: lowercase letters, digits, '-' or '_', at most 64 characters."
        return lambda value, limits: None if isinstance(value, str) and TASK_RE.fullmatch(value) else wrong
    return lambda value, limits: _json_problem(value, spec, limits)


def _compiled(table: dict[str, Field]) -> dict[str, _Check]:
    return {name: _compile(spec) for name, spec in table.items()}


_MESSAGE_CHECKS = _compiled(MESSAGE_SPEC)
_CANDIDATE_CHECKS = _compiled(CANDIDATE_SPEC)


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
        if not isinstance(message, dict) or message.keys() != MESSAGE_SPEC.keys():
            check.fail("messages", f"Item {index}: must be an object with exactly 'role' and 'content'.")
            continue
        for name, field_check in _MESSAGE_CHECKS.items():
            problem = field_check(message[name], check.limits)
            if problem is not None:
                check.fail("messages", f"Item {index}: {name}: {problem}")
                break
    if "messages" not in check.errors:
        check.clean["messages"] = value


def _candidate_problem(candidate: Any, limits: Limits) -> str | None:
    if not isinstance(candidate, dict) or "text" not in candidate or not candidate.keys() <= CANDIDATE_SPEC.keys():
        return "must be an object with 'text' and optional 'confidence', 'rank'."
    for name, field_check in _CANDIDATE_CHECKS.items():
        value = candidate.get(name)
        problem = None if value is None and name != "text" else field_check(value, limits)
        if problem is not None:
            return f"{name}: {problem}"
    return None


def _candidates(check: _Checker) -> None:
    value = check.data.get("candidates")
    if value is None:
        return
    if not isinstance(value, list) or len(value) > check.limits.max_candidates:
        check.fail("candidates", f"Must be a list of at most {check.limits.max_candidates} candidates.")
        return
    cleaned, ranks = [], set()
    for index, candidate in enumerate(value):
        problem = _candidate_problem(candidate, check.limits)
        rank = index if problem is not None or candidate.get("rank") is None else candidate["rank"]
        if problem is None and rank in ranks:
            problem = "rank must be unique (ranks default to the position in the list)."
        if problem is not None:
            check.fail("candidates", f"Item {index}: {problem}")
            continue
        ranks.add(rank)
        cleaned.append({"text": candidate["text"], "confidence": candidate.get("confidence"), "rank": rank})
    if "candidates" not in check.errors:
        check.clean["candidates"] = cleaned


def _client_context(check: _Checker) -> None:
    value = check.data.get("client_context")
    if value is None:
        return
    if not isinstance(value, dict) or not value.keys() <= CLIENT_CONTEXT_SPEC.keys():
        check.fail("client_context", "Must be an object with optional 'ip_address' and 'user_agent'.")
        return
    ip, agent = value.get("ip_address"), value.get("user_agent")
    agent = "" if agent is None else agent
    if ip is not None:
        try:
            ip = str(ipaddress.ip_address(ip)) if isinstance(ip, str) else None
        except ValueError:
            ip = None
        if ip is None:
            check.fail("client_context", "ip_address is not a valid IPv4 or IPv6 address.")
            return
    problem = _text_problem(agent, CLIENT_CONTEXT_SPEC["user_agent"], check.limits)
    if problem is not None:
        check.fail("client_context", f"user_agent: {problem}")
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


def idempotency_key_problem(key: str) -> str | None:
    """Why an Idempotency-Key header is refused, or None (the body's field has the same rule)."""
    return _text_problem(key, INTERACTION_SPEC["idempotency_key"], Limits())


_CUSTOM = {"messages": _messages, "candidates": _candidates, "client_context": _client_context}
_SIMPLE_INTERACTION = _compiled({name: spec for name, spec in INTERACTION_SPEC.items() if name not in _CUSTOM})
_FEEDBACK_CHECKS = _compiled(FEEDBACK_SPEC)


def validate_interaction(data: Any, limits: Limits) -> dict[str, Any]:
    """Check one interaction payload and return its cleaned fields, or raise PayloadError."""
    if not isinstance(data, dict):
        raise PayloadError({"non_field_errors": ["Expected a JSON object."]})
    check = _Checker(data, limits)
    check.unknown(INTERACTION_FIELDS)
    check.fields(_SIMPLE_INTERACTION)
    check.clean.setdefault("task", "default")
    for validate in _CUSTOM.values():
        validate(check)
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
    check.fields(_FEEDBACK_CHECKS)
    kind = check.clean.get("kind")
    if kind is None:
        check.errors.setdefault("kind", [f"Required: one of {', '.join(sorted(FEEDBACK_KINDS))}."])
        raise PayloadError(check.errors)
    own = KIND_FIELDS[kind]
    for name in ("score", "thumb", "correction", "candidate_id", "candidate_rank"):
        if name in data and name not in own:
            check.fail(name, f"Not allowed for kind '{kind}'.")
    given = [name for name in own if data.get(name) is not None]
    if not given and not any(name in check.errors for name in own):
        check.fail(own[-1], f"Required for kind '{kind}'" + (f" (or {own[0]})." if len(own) > 1 else "."))
    elif len(given) > 1:
        check.fail(own[-1], f"Send {own[0]} or {own[1]}, not both.")
    elif kind == "flag" and not check.clean.get("reason", "x").strip():
        check.fail("reason", "May not be blank.")
    if check.errors:
        raise PayloadError(check.errors)
    return check.clean
