"""django-q2 entry points of the job machinery."""

from __future__ import annotations

from .reaper import jobs_reap_stale


def reap_stale_jobs() -> str:
    """The `reap-stale-jobs` schedule."""
    counts = jobs_reap_stale()
    return ", ".join(f"{what}: {count}" for what, count in sorted(counts.items())) or "no stale jobs"
