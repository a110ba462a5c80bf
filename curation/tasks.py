"""django-q2 entry points of curation."""

from __future__ import annotations

from .services import curation_run_create, curation_run_execute


def execute_run(run_id: int) -> str:
    run = curation_run_execute(run_id=run_id)
    return f"curation run {run.pk}: {run.status}"


def run_daily_curation() -> str:
    """The daily schedule: one run over every task, from the last run's watermark."""
    run = curation_run_create(requested_by="schedule")
    return execute_run(run.pk)


def execute_import(run_id: int) -> str:
    from .importers import import_run_execute

    run = import_run_execute(run_id=run_id)
    return f"import run {run.pk}: {run.status}"
