"""PII scrubbing: find personal data and secrets in text and replace them by typed placeholders.

Two passes. The first, always on, is fast rules: contact data and secrets (`patterns`), national
identifiers with their checksums, dates of birth, document numbers, handles and crypto addresses
(`identifiers`), person names and street addresses (`people`). The second, chosen by the
PII_DETECTOR environment variable (`patterns`, the default, or `presidio`), adds the person names a
statistical model finds (`model`: Microsoft Presidio over a spaCy pipeline). A model that is not
installed falls back to the rules with one logged warning. Plain values in, plain values out;
figures on the labelled sets are in README ("PII") and benchmarks/pii.py.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable

from . import identifiers, model, patterns, people
from .patterns import Match, iban_ok, luhn_ok

__all__ = ["DETECTORS", "PLACEHOLDERS", "Match", "find_pii", "iban_ok", "luhn_ok", "scrub"]

PLACEHOLDERS = {
    kind: f"[{kind}]"
    for kind in (
        "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "IP", "URL", "SECRET", "POSTAL_CODE", "NAME", "ADDRESS",
        "NATIONAL_ID", "DATE_OF_BIRTH", "PASSPORT", "DRIVING_LICENCE", "USERNAME", "CRYPTO_ADDRESS",
    )
}  # fmt: skip
DETECTORS = ("patterns", "presidio")


def _rules(text: str) -> list[Match]:
    return identifiers.candidates(text) + patterns.candidates(text) + people.candidates(text)


def _with_model(text: str) -> list[Match]:
    """The model only adds names the rules missed: spans that no rule match overlaps and that look like a name."""
    rules = _rules(text)
    extra = [
        m
        for m in model.names(text)
        if people.plausible_name(text[m.start : m.end]) and all(m.end <= r.start or m.start >= r.end for r in rules)
    ]
    return rules + extra


_PASSES: dict[str, Callable[[str], list[Match]]] = {"patterns": _rules, "presidio": _with_model}
_active: dict[str, str] = {}


def active_detector() -> str:
    """The detector in use: PII_DETECTOR if its model loads, else `patterns` (warned once)."""
    if "name" not in _active:
        wanted = os.environ.get("PII_DETECTOR", "patterns").strip() or "patterns"
        _active["name"] = wanted if wanted == "patterns" or model.available(wanted) else "patterns"
    return _active["name"]


def find_pii(text: str, detector: str | None = None) -> list[Match]:
    """Every PII match in text, non-overlapping, in order; `detector` overrides PII_DETECTOR."""
    chosen: list[Match] = []
    # The longest match wins an overlap (a URL swallows the token inside it); ties by pass order.
    for match in sorted(_PASSES[detector or active_detector()](text), key=lambda m: m.start - m.end):
        if all(match.end <= c.start or match.start >= c.end for c in chosen):
            chosen.append(match)
    return sorted(chosen, key=lambda m: m.start)


def scrub(text: str, detector: str | None = None) -> tuple[str, Counter[str]]:
    """Replace PII by typed placeholders; returns the clean text and the count per kind."""
    if not text:
        return text, Counter()
    matches = find_pii(text, detector)
    if not matches:
        return text, Counter()
    parts, last = [], 0
    for match in matches:
        parts.append(text[last : match.start])
        parts.append(PLACEHOLDERS[match.kind])
        last = match.end
    parts.append(text[last:])
    return "".join(parts), Counter(m.kind for m in matches)
