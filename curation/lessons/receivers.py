"""Lessons and memory listen to the loop: feedback arrives (learn now, on the queue), a reviewer
approves or rejects an example, a lesson leaves, a subject is erased. Connected from
curation/receivers.py (imported by CurationConfig.ready)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django_q.tasks import async_task

from interactions import selectors as interaction_selectors
from interactions.models import Feedback, Subject
from interactions.signals import subject_erased

from ..models import TrainingExample
from .memory import person_forget, person_memory
from .models import Lesson
from .services import lesson_removed, lessons_remove


@receiver(post_save, sender=Feedback, dispatch_uid="curation.lessons.feedback")
def feedback_arrived(sender: Any, instance: Feedback, created: bool, **kwargs: Any) -> None:
    if created:
        pk = instance.pk
        # robust: the feedback is stored whatever happens to this (with Q_SYNC the task runs right here)
        transaction.on_commit(lambda: async_task("curation.tasks.learn_from_feedback", pk, task_name=f"learn-{pk}"), robust=True)


@receiver(post_save, sender=TrainingExample, dispatch_uid="curation.lessons.review")
def example_reviewed(sender: Any, instance: TrainingExample, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields and "review_status" in update_fields:  # example_review (curation runs write in bulk)
        interaction_id = str(instance.source_interaction_id)
        transaction.on_commit(lambda: async_task("curation.tasks.sync_lesson", interaction_id))


@receiver(post_delete, sender=Lesson, dispatch_uid="curation.lessons.removed")
def lesson_deleted(sender: Any, instance: Lesson, **kwargs: Any) -> None:
    lesson_removed(task=instance.task)


@receiver(subject_erased, dispatch_uid="curation.lessons.erase")
def erase_lessons_and_memory(sender: Any, subject_id: int, interaction_ids: list[Any], **kwargs: Any) -> dict[str, int]:
    """The subject's lessons (with their vectors), persona, its changes and memories."""
    return {"lessons": lessons_remove(interaction_ids=interaction_ids), **person_forget(subject_id=subject_id)}


def _export(subject: Subject) -> dict[str, Any]:
    return {"memory": person_memory(subject=subject)}


interaction_selectors.register_exporter(_export)
