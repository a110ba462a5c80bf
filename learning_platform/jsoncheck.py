"""What no request may carry, checked on plain values (no Django here).

PostgreSQL cannot store U+0000 in text or jsonb, and the other C0 control characters (tab,
line feed and carriage return aside) are never meant as text: a client sending them has a bug
or an attack. Deeply nested JSON costs recursion everywhere it is read again (serializers,
exports, the training data writers), so the door bounds it.
"""

from __future__ import annotations

import re
from typing import Any

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# In JSON text a control character can only appear escaped: \u00XX, \b or \f. Bodies without
# one of these (nearly all) skip the per-string check. False alarms (an escaped backslash
# followed by "b", \u0009) only cost the exact check.
_MAYBE_CONTROL = re.compile(rb"\\(?:u00[01][0-9a-fA-F]|[bf])")

CONTROL_MESSAGE = "Contains a control character (U+{code:04X}); only tab, line feed and carriage return are allowed."


def control_message(text: str) -> str | None:
    """The error message for a string holding a forbidden control character, else None."""
    found = CONTROL_CHARS.search(text)
    return CONTROL_MESSAGE.format(code=ord(found.group())) if found else None


def may_hold_control_chars(raw: bytes) -> bool:
    return _MAYBE_CONTROL.search(raw) is not None


def _where(path: tuple[Any, ...] | None) -> str:
    parts: list[str] = []
    while path is not None:
        path, key = path
        parts.append(str(key))
    return ".".join(reversed(parts)) or "non_field_errors"


_CONTAINERS = frozenset({dict, list})


def _within_depth(value: Any, max_depth: int) -> bool:
    """True when no container is nested deeper than max_depth: the fast walk, level by level,
    with no paths (parsed JSON holds exact dicts and lists, so `type` is enough)."""
    level, depth = [value], 1
    while level:
        if depth > max_depth:
            return False
        below: list[Any] = []
        for node in level:
            below += [child for child in (node.values() if type(node) is dict else node) if type(child) in _CONTAINERS]
        level, depth = below, depth + 1
    return True


def json_problem(value: Any, *, max_depth: int, strings: bool = True) -> tuple[str, str] | None:
    """(where, message) for the first problem in a parsed JSON value, or None.

    Iterative walks (no recursion, so any depth is safe): containers nested deeper than
    max_depth (the top-level value is depth 1), and, when `strings`, control characters in
    any string or object key. `where` names the place as dotted keys and indexes.
    """
    if not strings and _within_depth(value, max_depth):
        return None  # the common case; only a failure pays for the walk that tracks paths
    stack: list[tuple[Any, int, tuple[Any, ...] | None]] = [(value, 1, None)]
    while stack:
        node, depth, path = stack.pop()
        if depth > max_depth:
            return _where(path), f"JSON nested deeper than {max_depth} levels (MAX_JSON_DEPTH)."
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if strings and isinstance(key, str) and (message := control_message(key)):
                return _where((path, key)), f"Object key: {message}"
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1, (path, key)))
            elif strings and isinstance(child, str) and (message := control_message(child)):
                return _where((path, key)), message
    return None


def check_json(value: Any, *, max_depth: int, raw: bytes | None = None) -> tuple[str, str] | None:
    """`json_problem` for a value parsed from `raw`, skipping the string check when the raw
    text cannot hold a control character. A top-level string is checked too."""
    strings = raw is None or may_hold_control_chars(raw)
    if isinstance(value, (dict, list)):
        return json_problem(value, max_depth=max_depth, strings=strings)
    if strings and isinstance(value, str) and (message := control_message(value)):
        return "non_field_errors", message
    return None
