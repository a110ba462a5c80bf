"""django-q2 entry points of abtesting."""

from __future__ import annotations

from .guardrails import check_all


def hourly_guardrails() -> str:
    return "\n".join(f"{r['task']}: {r['status']}" for r in check_all()) or "no champions"
