"""What the queued task does with one feedback (curation.tasks.learn_from_feedback)."""

from __future__ import annotations

from interactions.models import Feedback

from .memory import person_learn
from .services import lesson_learn, lessons_count_against


def learn(*, feedback_id: int) -> str:
    feedback = (
        Feedback.objects.select_related("interaction__subject", "candidate")
        .prefetch_related("interaction__candidates")
        .filter(pk=feedback_id)
        .first()
    )
    if feedback is None:
        return f"feedback {feedback_id}: gone (erased)"
    lesson = lesson_learn(interaction_id=feedback.interaction_id)
    retired = lessons_count_against(feedback=feedback)
    changes = person_learn(feedback=feedback)
    made = f"lesson {lesson.pk}" if lesson else "no lesson"
    return f"feedback {feedback_id}: {made}, {retired} retired, {len(changes)} facet moves"
