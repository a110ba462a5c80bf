"""Lessons: made from an interaction's gold examples the moment its feedback arrives, retrieved
at serving (recall above a threshold, else few-shot), retired by thumbs down, dropped when their
example goes (rejected, flagged, opted out, erased), skipped once a champion was trained on them."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Exists, F, OuterRef

from interactions.models import Feedback, Interaction

from ..models import DatasetItem, TrainingExample
from ..services.errors import CurationError
from . import embedding
from .index import VectorIndex, from_bytes, to_bytes
from .models import Lesson, LessonSettings
from .prompting import Shot, query_text

logger = logging.getLogger(__name__)
EXTRA = 4  # candidates searched beyond k, in case another process removed some meanwhile
SETTINGS_FIELDS = (
    "recall_enabled",
    "recall_threshold",
    "few_shot_enabled",
    "few_shot_k",
    "few_shot_min_similarity",
    "retire_after_downvotes",
    "memory_enabled",
    "preamble_max_tokens",
)


# --- settings ----------------------------------------------------------------------------------


def lesson_settings_for(task: str) -> LessonSettings:
    """The task's row, or unsaved defaults (nothing written on the serving path)."""
    return LessonSettings.objects.filter(task=task).first() or LessonSettings(task=task)


def lesson_settings_update(*, task: str, values: dict[str, Any]) -> LessonSettings:
    unknown = set(values) - set(SETTINGS_FIELDS)
    if unknown:
        raise CurationError("Unknown lesson settings.", fields={name: ["Unknown field."] for name in sorted(unknown)})
    row, _ = LessonSettings.objects.get_or_create(task=task)
    for name, value in values.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


def _bump(task: str, *, removal: bool) -> None:
    LessonSettings.objects.get_or_create(task=task)
    changes: dict[str, Any] = {"index_version": F("index_version") + 1}
    if removal:
        changes["removal_version"] = F("removal_version") + 1
    LessonSettings.objects.filter(task=task).update(**changes)


# --- indexing ----------------------------------------------------------------------------------


def _source(examples: list[TrainingExample]) -> tuple[TrainingExample, str, str] | None:
    """(example, origin, mistake) of the interaction's lesson: a correction first, then a chosen
    candidate, then a gold (staff-approved or top-rated) output."""
    by_origin = {(e.kind, e.origin): e for e in examples if e.tier != "reject"}
    correction = by_origin.get(("sft", "correction"))
    if correction is not None:
        pair = by_origin.get(("preference", "correction"))
        return correction, "correction", pair.rejected if pair else ""
    choices = sorted((e for (kind, origin), e in by_origin.items() if origin.startswith("choice")), key=lambda e: e.key)
    if choices:
        return choices[0], "choice", ""
    output = by_origin.get(("sft", "output"))
    if output is not None and output.tier == "gold":
        return output, "approval", ""
    return None


@transaction.atomic
def lesson_sync(*, interaction_id: Any) -> Lesson | None:
    """Make, update or drop the lesson of one interaction from its current examples."""
    examples = list(TrainingExample.objects.filter(source_interaction_id=interaction_id).select_related("source_interaction"))
    existing = Lesson.objects.select_for_update().filter(source_interaction_id=interaction_id).first()
    found = _source(examples)
    if found is None or (found[0].source_interaction.subject_id and _opted_out(found[0])):
        if existing is not None:
            existing.delete()
        return None
    example, origin, mistake = found
    prompt = query_text(example.prompt)
    values = {"example": example, "origin": origin, "answer": example.target, "mistake": mistake, "task": example.task}
    if existing is not None and existing.prompt_text == prompt:
        if any(getattr(existing, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(existing, name, value)
            existing.save()
            _bump(example.task, removal=True)  # an answer changed: caches reload
        return existing
    if existing is not None:
        existing.delete()
    lesson = Lesson.objects.create(
        source_interaction_id=interaction_id,
        subject_id=example.source_interaction.subject_id,
        prompt_text=prompt,
        vector=to_bytes(embedding.embed_one(prompt)),
        **values,
    )
    _bump(example.task, removal=False)
    return lesson


def _opted_out(example: TrainingExample) -> bool:
    subject = example.source_interaction.subject
    return bool(subject and subject.opted_out)


def lesson_learn(*, interaction_id: Any) -> Lesson | None:
    """Re-curate one interaction now (the daily run's own code: scrubbed, scored, tiered), then
    sync its lesson. Flagged or opted-out interactions yield no example, so no lesson."""
    from ..services.runs import _process_chunk  # one interaction is one chunk of a run

    with transaction.atomic():
        # One learner per interaction at a time: concurrent feedbacks on one answer would race to
        # create its example and lesson (the interaction's lock comes first, as in feedback_create).
        if not Interaction.objects.select_for_update().filter(pk=interaction_id).exists():
            return None  # erased meanwhile
        _process_chunk([interaction_id], {}, Counter(), {})
        return lesson_sync(interaction_id=interaction_id)


def lesson_retire(*, lesson: Lesson, reason: str) -> Lesson:
    Lesson.objects.filter(pk=lesson.pk).update(status=Lesson.Status.RETIRED, retired_reason=reason[:200])
    _bump(lesson.task, removal=True)
    lesson.refresh_from_db()
    return lesson


def lesson_reinstate(*, lesson: Lesson) -> Lesson:
    Lesson.objects.filter(pk=lesson.pk).update(status=Lesson.Status.ACTIVE, retired_reason="", downvotes=0)
    _bump(lesson.task, removal=True)
    lesson.refresh_from_db()
    return lesson


def lessons_count_against(*, feedback: Feedback) -> int:
    """A thumb down, a score <= 2 or a correction on an answer that used lessons counts against
    each of them; one that reaches the task's limit retires. Returns how many retired."""
    negative = feedback.thumb == "down" or (feedback.score is not None and feedback.score <= 2)
    negative = negative or (feedback.kind == "correction" and bool(feedback.correction.strip()))
    used = ((feedback.interaction.metadata or {}).get("lessons") or {}).get("used") or []
    if not negative or not used:
        return 0
    Lesson.objects.filter(pk__in=used).update(downvotes=F("downvotes") + 1)
    limit = lesson_settings_for(feedback.interaction.task).retire_after_downvotes
    retired = 0
    for lesson in Lesson.objects.filter(pk__in=used, status=Lesson.Status.ACTIVE, downvotes__gte=limit):
        lesson_retire(lesson=lesson, reason=f"{lesson.downvotes} negative feedbacks on answers that used it")
        retired += 1
    return retired


def lessons_remove(*, interaction_ids: list[Any]) -> int:
    """Delete the lessons (and their vectors) of these interactions: an erasure."""
    return Lesson.objects.filter(source_interaction_id__in=interaction_ids).delete()[1].get("curation.Lesson", 0)


def lesson_removed(*, task: str) -> None:
    """A lesson left (deleted with its example, or erased): every process rebuilds its cache."""
    _bump(task, removal=True)


# --- retrieval ---------------------------------------------------------------------------------


@dataclass
class _Cached:
    index: VectorIndex
    token: Any = None  # the settings row's index_token: a row made again restarts its counters
    version: int = -1
    removal: int = -1
    dataset_id: int | None = None
    last_id: int = 0


_cache: dict[str, _Cached] = {}
_cache_lock = threading.Lock()


def _usable(task: str, dataset_id: int | None) -> Any:
    rows = Lesson.objects.filter(task=task, status=Lesson.Status.ACTIVE).exclude(example__tier="reject")
    rows = rows.exclude(subject__opted_out=True)
    if dataset_id is not None:  # absorbed: the champion was trained on the lesson's example
        absorbed = DatasetItem.objects.filter(dataset_id=dataset_id, source_interaction_id=OuterRef("source_interaction_id"))
        rows = rows.exclude(Exists(absorbed))
    return rows


def task_index(task: str, row: LessonSettings, dataset_id: int | None) -> VectorIndex:
    """The task's usable vectors, cached per process: new lessons are read incrementally, a
    removal or a new champion dataset rebuilds."""
    with _cache_lock:
        cached = _cache.get(task)
        same = cached is not None and (cached.token, cached.dataset_id) == (row.index_token, dataset_id)
        if same and cached.version == row.index_version:
            return cached.index
        if not same or cached.removal != row.removal_version:
            cached = _Cached(index=VectorIndex(embedding.DIM), token=row.index_token, dataset_id=dataset_id)
        fresh = _usable(task, dataset_id).filter(pk__gt=cached.last_id).order_by("pk").values_list("pk", "vector")
        ids, vectors = [], []
        for pk, vector in fresh.iterator(chunk_size=5000):
            ids.append(pk)
            vectors.append(from_bytes(vector, embedding.DIM))
        if ids:
            cached.index.add(ids, vectors)
            cached.last_id = ids[-1]
        cached.version, cached.removal = row.index_version, row.removal_version
        _cache[task] = cached
        return cached.index


@dataclass
class Retrieved:
    recalled: Shot | None = None
    shots: list[Shot] = field(default_factory=list)


def lessons_retrieve(*, task: str, messages: list[dict[str, str]], row: LessonSettings, dataset_id: int | None) -> Retrieved:
    """The lesson to recall, or the few-shot lessons (most similar first), for a request."""
    if not (row.recall_enabled or (row.few_shot_enabled and row.few_shot_k)):
        return Retrieved()
    if row.index_version == 0:
        return Retrieved()  # the task never had a lesson: no embedding, no search
    index = task_index(task, row, dataset_id)
    text = query_text(messages)
    if not len(index) or not text.strip():
        return Retrieved()
    k = row.few_shot_k if row.few_shot_enabled else 1
    hits = index.search(embedding.embed_one(text), max(k, 1) + EXTRA)
    shots = _verified(hits, task, dataset_id)
    if row.recall_enabled and shots and shots[0].similarity >= row.recall_threshold:
        return Retrieved(recalled=shots[0])
    if not row.few_shot_enabled:
        return Retrieved()
    return Retrieved(shots=[s for s in shots if s.similarity >= row.few_shot_min_similarity][:k])


def _verified(hits: list[tuple[int, float]], task: str, dataset_id: int | None) -> list[Shot]:
    """The hits still usable now (another process may have removed some since this one cached):
    one query on the primary key alone, the conditions checked on the fetched columns (with a
    condition on task or status, or an exclude() over the examples, PostgreSQL may scan the
    task's lessons: 120 ms at 100k with stale statistics, measured)."""
    similarity = dict(hits)
    rows = Lesson.objects.filter(pk__in=list(similarity))
    if dataset_id is not None:
        absorbed = DatasetItem.objects.filter(dataset_id=dataset_id, source_interaction_id=OuterRef("source_interaction_id"))
        rows = rows.annotate(absorbed=Exists(absorbed)).filter(absorbed=False)
    fields = ("pk", "task", "status", "prompt_text", "answer", "mistake", "example__tier", "subject__opted_out")
    shots = [
        Shot(pk, similarity[pk], prompt, answer, mistake)
        for pk, of_task, status, prompt, answer, mistake, tier, opted_out in rows.values_list(*fields)
        if of_task == task and status == Lesson.Status.ACTIVE and tier != "reject" and not opted_out
    ]
    return sorted(shots, key=lambda s: -s.similarity)
