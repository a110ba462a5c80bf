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


def learn_from_feedback(feedback_id: int) -> str:
    """Queued when feedback arrives: the interaction's lesson, the lessons its answer used, the person."""
    from .lessons.tasks import learn

    return learn(feedback_id=feedback_id)


def sync_lesson(interaction_id: str) -> str:
    """Queued when a reviewer approves or rejects an example."""
    from .lessons.services import lesson_sync

    lesson = lesson_sync(interaction_id=interaction_id)
    return f"interaction {interaction_id}: lesson {lesson.pk if lesson else 'none'}"
