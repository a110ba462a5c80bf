"""People: a subject's persona facets and memories, learnt from their feedback, shown to the
model as a short preamble, exported with the subject and erased with it. Per subject, and a
subject belongs to one API client, so nothing is shared across clients. Never made, nor used,
for an opted-out subject."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from interactions.models import ApiClient, Feedback, Subject
from interactions.services import subject_hash

from .. import pii
from . import people
from .models import Memory, Persona, PersonaChange

MEMORY_KEEP = 5  # per kind, the most recent
PREAMBLE_MEMORIES = 4


def _signal(feedback: Feedback) -> tuple[str, str, list[str]] | None:
    """(cause, endorsed or rejected text, the texts the endorsed one was preferred to)."""
    interaction = feedback.interaction
    if feedback.kind == "choice" and feedback.candidate_id:
        others = [c.text for c in interaction.candidates.all() if c.pk != feedback.candidate_id]
        return "choice", feedback.candidate.text, others
    if feedback.kind == "correction" and feedback.correction.strip():
        return "correction", feedback.correction, [interaction.output_text]
    if feedback.kind == "thumb" and feedback.thumb and interaction.output_text.strip():
        return f"thumb_{feedback.thumb}", interaction.output_text, []
    return None


@transaction.atomic
def person_learn(*, feedback: Feedback) -> list[PersonaChange]:
    """Move the subject's facets by the rule in people.py and keep what the request tells about
    them (goals, preferences, history), for choices and corrections."""
    subject = feedback.interaction.subject
    signal = _signal(feedback)
    if subject is None or signal is None:
        return []
    # the subject's row locked first (as an erasure locks it): an erasure racing this one either
    # finished (the subject is gone: nothing to learn) or waits until this transaction ends
    subject = Subject.objects.select_for_update().filter(pk=subject.pk).first()
    if subject is None or subject.opted_out:
        return []
    cause, text, others = signal
    persona, _ = Persona.objects.select_for_update().get_or_create(subject=subject)
    moved = people.moves(persona.facets, cause=cause, endorsed=text, others=others)
    changes = [
        PersonaChange(persona=persona, facet=name, before=before, after=after, cause=cause, feedback_id=feedback.pk)
        for name, (before, after) in moved.items()
    ]
    if changes:
        persona.facets = {**persona.facets, **{name: after for name, (_, after) in moved.items()}}
        persona.save(update_fields=["facets", "updated_at"])
        PersonaChange.objects.bulk_create(changes)
    if cause in ("choice", "correction"):
        _remember(subject, feedback, cause)
    return changes


def _remember(subject: Subject, feedback: Feedback, cause: str) -> None:
    prompt = "\n".join(m["content"] for m in feedback.interaction.messages if m.get("role") == "user")
    for kind, text in people.memories_from(pii.scrub(prompt)[0], cause=cause):
        if not Memory.objects.filter(subject=subject, kind=kind, text=text).exists():
            Memory.objects.create(subject=subject, kind=kind, text=text, feedback_id=feedback.pk)
        stale = Memory.objects.filter(subject=subject, kind=kind).values_list("pk", flat=True)[MEMORY_KEEP:]
        Memory.objects.filter(pk__in=list(stale)).delete()


def person_preamble(*, client: ApiClient, user_id: str, max_tokens: int) -> str:
    """The preamble for a request by this user ('' for an unknown or opted-out one)."""
    subject = Subject.objects.filter(client=client, user_hash=subject_hash(client=client, user_id=user_id)).first()
    return subject_preamble(subject=subject, max_tokens=max_tokens)


def subject_preamble(*, subject: Subject | None, max_tokens: int) -> str:
    """The preamble for a known subject (a trial's other side answers the logged request's person)."""
    if subject is None or subject.opted_out:
        return ""
    persona = Persona.objects.filter(subject=subject).values_list("facets", flat=True).first() or {}
    memories = list(Memory.objects.filter(subject=subject).values_list("kind", "text")[:PREAMBLE_MEMORIES])
    return people.preamble(persona, memories, max_tokens=max_tokens)


def person_memory(*, subject: Subject) -> dict[str, Any]:
    """The persona (with each change and its cause) and memories of a subject: the memory
    endpoint and the subject export."""
    persona = Persona.objects.filter(subject=subject).first()
    changes = PersonaChange.objects.filter(persona=persona) if persona else PersonaChange.objects.none()
    return {
        "persona": {
            "facets": {name: (persona.facets if persona else {}).get(name, people.NEUTRAL) for name in people.FACETS},
            "changes": [{"facet": c.facet, "before": c.before, "after": c.after, "cause": c.cause, "at": c.created_at} for c in changes],
        },
        "memories": [{"kind": m.kind, "text": m.text, "at": m.created_at} for m in Memory.objects.filter(subject=subject)],
    }


@transaction.atomic
def person_forget(*, subject_id: int) -> dict[str, int]:
    """Delete a subject's persona, its changes and memories."""
    changes = PersonaChange.objects.filter(persona__subject_id=subject_id).delete()[0]
    personas = Persona.objects.filter(subject_id=subject_id).delete()[0]
    memories = Memory.objects.filter(subject_id=subject_id).delete()[0]
    return {"personas": personas, "persona_changes": changes, "memories": memories}
