"""The lessons-and-memory stage of serving (registry/serving/service.py: route -> this ->
generate -> log -> announce): what the model sees and what the interaction records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .memory import person_preamble, subject_preamble
from .prompting import Shot, with_context
from .services import lesson_settings_for, lessons_retrieve


@dataclass(frozen=True)
class Context:
    messages: list[dict[str, str]]  # what the model is sent
    recalled: Shot | None = None  # answer with this lesson, generate nothing
    shots: list[Shot] = field(default_factory=list)
    preamble: str = ""

    def metadata(self) -> dict[str, Any]:
        """Stored on the interaction (metadata.lessons): feedback on the answer reaches these lessons."""
        used = [self.recalled] if self.recalled else self.shots
        return {
            "lessons": {
                "mode": "recall" if self.recalled else ("few_shot" if self.shots else "none"),
                "used": [s.lesson_id for s in used],
                "similarity": [round(s.similarity, 4) for s in used],
                "preamble": bool(self.preamble),
            }
        }


def serving_context(
    *,
    task: str,
    messages: list[dict[str, str]],
    client: Any,
    user_id: str | None,
    dataset_id: int | None,
    subject: Any = None,
) -> Context:
    """Recall or few-shot lessons for this request (per the task's LessonSettings), and the
    person's preamble when a known user_id is sent (or, for a logged request, its `subject`)."""
    row = lesson_settings_for(task)
    retrieved = lessons_retrieve(task=task, messages=messages, row=row, dataset_id=dataset_id)
    if retrieved.recalled is not None:
        return Context(messages=messages, recalled=retrieved.recalled)
    preamble = ""
    if row.memory_enabled and subject is not None:
        preamble = subject_preamble(subject=subject, max_tokens=row.preamble_max_tokens)
    elif row.memory_enabled and user_id and client is not None:
        preamble = person_preamble(client=client, user_id=user_id, max_tokens=row.preamble_max_tokens)
    sent = with_context(messages, preamble=preamble, shots=retrieved.shots)
    return Context(messages=sent, shots=retrieved.shots, preamble=preamble)


Messages = list[dict[str, str]]


def fitted(context: Context, messages: Messages, fits: Callable[[Messages], bool]) -> Context:
    """`context` with as many of its lessons as `fits` the model (the least similar dropped
    first; the request itself and the preamble always stay), so few-shot examples never push a
    prompt past a small model's context window. The metadata then names only the lessons sent."""
    shots = list(context.shots)
    while shots and not fits(context.messages):
        shots.pop()
        sent = with_context(messages, preamble=context.preamble, shots=shots)
        context = replace(context, messages=sent, shots=list(shots))
    return context
