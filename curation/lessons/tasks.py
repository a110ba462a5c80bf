"""What the queued task does with one feedback (curation.tasks.learn_from_feedback)."""

from __future__ import annotations

from django.db import transaction

from interactions.models import Feedback
from learning_platform.retry import FOREIGN_KEY_VIOLATION, retry_transaction

from .memory import person_learn
from .services import lesson_learn, lessons_count_against


def learn(*, feedback_id: int) -> str:
    """One transaction, run again when the database aborted it (an erasure of the same person
    racing this feedback). Locks in the erasure's order: the subject (person_learn), then the
    interaction (lesson_learn)."""
    return retry_transaction(lambda: _learn(feedback_id), also=frozenset({FOREIGN_KEY_VIOLATION}))


@transaction.atomic
def _learn(feedback_id: int) -> str:
    feedback = (
        Feedback.objects.select_related("interaction__subject", "candidate")
        .prefetch_related("interaction__candidates")
        .filter(pk=feedback_id)
        .first()
    )
    if feedback is None:
        return f"feedback {feedback_id}: gone (erased)"
    changes = person_learn(feedback=feedback)
    lesson = lesson_learn(interaction_id=feedback.interaction_id)
    retired = lessons_count_against(feedback=feedback)
    made = f"lesson {lesson.pk}" if lesson else "no lesson"
    return f"feedback {feedback_id}: {made}, {retired} retired, {len(changes)} facet moves"
