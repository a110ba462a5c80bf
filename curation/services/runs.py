"""Curation runs: read what changed, build and store examples, deduplicate, find knowledge gaps."""

from __future__ import annotations

import logging
import multiprocessing
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Max, Min, Q
from django.utils import timezone

from interactions.models import Candidate, Feedback, Interaction
from learning_platform.db import bulk_set, fast_insert

from .. import dedup, gaps, pii
from ..models import CurationRun, KnowledgeGap, TrainingExample
from ..pipeline import Config, ExampleRow, FeedbackView, InteractionView, examples_for, skip_reason
from .config import config_for
from .errors import CurationError

logger = logging.getLogger(__name__)
CHUNK = 2000
GAP_SAMPLE = 5000
Progress = Callable[[float], None]


def curation_run_create(*, task: str = "", since: datetime | None = None, requested_by: str = "") -> CurationRun:
    if task and not Interaction.objects.filter(task=task).exists():
        raise CurationError(f"No interactions of task {task!r} exist.", fields={"task": ["Unknown task."]})
    return CurationRun.objects.create(task=task, since=since, requested_by=requested_by)


def curation_run_start(*, task: str = "", since: datetime | None = None, requested_by: str = "") -> CurationRun:
    """Create a run and queue it on django-q2 once the row is committed."""
    from django_q.tasks import async_task

    run = curation_run_create(task=task, since=since, requested_by=requested_by)
    transaction.on_commit(lambda: async_task("curation.tasks.execute_run", run.pk, task_name=f"curation-run-{run.pk}"))
    return run


def _log(run: CurationRun, message: str) -> None:
    logger.info("curation run %s: %s", run.pk, message)
    run.log = (run.log + f"{timezone.now():%H:%M:%S} {message}\n")[-20_000:]


def _save(run: CurationRun, **fields: Any) -> None:
    for name, value in fields.items():
        setattr(run, name, value)
    run.heartbeat_at = timezone.now()
    run.save(update_fields=[*fields, "heartbeat_at", "log", "counts"])


def _since(run: CurationRun) -> datetime | None:
    if run.since:
        return run.since
    scope = Q(task="") | Q(task=run.task) if run.task else Q(task="")
    return CurationRun.objects.filter(scope, status=CurationRun.Status.SUCCEEDED).aggregate(m=Max("watermark"))["m"]


def _changed_ids(task: str, since: datetime | None, until: datetime) -> list[Any]:
    """Interactions created or changed, or with new feedback, in (since, until]."""
    interactions = Interaction.objects.filter(updated_at__lte=until)
    feedback = Feedback.objects.filter(created_at__lte=until)
    if task:
        interactions, feedback = interactions.filter(task=task), feedback.filter(interaction__task=task)
    if since is None:
        return list(interactions.order_by("pk").values_list("pk", flat=True))
    ids = set(interactions.filter(updated_at__gt=since).values_list("pk", flat=True))
    ids |= set(feedback.filter(created_at__gt=since).values_list("interaction_id", flat=True))
    return sorted(ids)


def _chunks(ids: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _views(ids: list[Any]) -> list[InteractionView]:
    feedback: dict[Any, list[FeedbackView]] = defaultdict(list)
    rows = Feedback.objects.filter(interaction_id__in=ids).order_by("created_at", "pk")
    for f in rows.values("interaction_id", "kind", "source", "score", "thumb", "correction", "candidate__rank"):
        feedback[f["interaction_id"]].append(
            FeedbackView(f["kind"], f["source"], f["score"], f["thumb"], f["correction"], f["candidate__rank"])
        )
    candidates: dict[Any, dict[int, str]] = defaultdict(dict)
    for c in Candidate.objects.filter(interaction_id__in=ids).values("interaction_id", "rank", "text"):
        candidates[c["interaction_id"]][c["rank"]] = c["text"]
    reviews: dict[Any, dict[str, set[str]]] = defaultdict(lambda: {"approved": set(), "rejected": set()})
    reviewed = TrainingExample.objects.filter(source_interaction_id__in=ids).exclude(review_status="pending")
    for key, status, interaction_id in reviewed.values_list("key", "review_status", "source_interaction_id"):
        reviews[interaction_id][status].add(key)
    fields = ("id", "task", "messages", "output_text", "confidence", "reasoning", "metadata", "subject__opted_out")
    views = []
    for i in Interaction.objects.filter(pk__in=ids).values(*fields):
        category = (i["metadata"] or {}).get("category", "")
        views.append(
            InteractionView(
                id=i["id"],
                task=i["task"],
                messages=i["messages"],
                output_text=i["output_text"],
                confidence=i["confidence"],
                reasoning=i["reasoning"],
                category=category[:64] if isinstance(category, str) else "",
                feedback=feedback.get(i["id"], ()),
                candidates=candidates.get(i["id"], {}),
                opted_out=bool(i["subject__opted_out"]),
                approved_keys=frozenset(reviews[i["id"]]["approved"]) if i["id"] in reviews else frozenset(),
                rejected_keys=frozenset(reviews[i["id"]]["rejected"]) if i["id"] in reviews else frozenset(),
            )
        )
    return views


def _example_values(view: InteractionView, row: ExampleRow) -> dict[str, Any]:
    return {
        "key": row.key,
        "task": view.task,
        "category": view.category,
        "kind": row.kind,
        "origin": row.origin,
        "source_interaction_id": view.id,
        "prompt": row.prompt,
        "target": row.target,
        "rejected": row.rejected,
        "label": row.label,
        "signals": row.score.breakdown,
        "quality_score": row.score.quality,
        "tier": row.score.tier,
        "content_hash": row.content_hash,
        "pii_found": row.pii_found,
        "token_count": row.token_count,
    }


_UPDATABLE = (
    "prompt",
    "target",
    "rejected",
    "label",
    "signals",
    "quality_score",
    "tier",
    "content_hash",
    "pii_found",
    "token_count",
    "category",
)


@transaction.atomic
def _store(ids: list[Any], produced: list[dict[str, Any]], counts: Counter[str]) -> set[str]:
    """Insert new examples, update changed ones, delete those no longer produced. Returns the
    tasks whose examples changed."""
    existing = {e.key: e for e in TrainingExample.objects.filter(source_interaction_id__in=ids).only("id", "key", "task", *_UPDATABLE)}
    new = [values for values in produced if values["key"] not in existing]
    changed = []
    for values in produced:
        example = existing.get(values["key"])
        if example is not None and any(getattr(example, f) != values[f] for f in _UPDATABLE):
            for name in _UPDATABLE:
                setattr(example, name, values[name])
            changed.append(example)
    stale = existing.keys() - {values["key"] for values in produced}
    fast_insert(TrainingExample, new)
    if changed:
        TrainingExample.objects.bulk_update(changed, [*_UPDATABLE, "updated_at"], batch_size=500)
    if stale:
        TrainingExample.objects.filter(key__in=stale).delete()
    counts.update(examples_created=len(new), examples_updated=len(changed), examples_removed=len(stale))
    return {v["task"] for v in new} | {e.task for e in changed} | {existing[k].task for k in stale}


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = round(timings.get(stage, 0.0) + time.perf_counter() - start, 3)


def _process_chunk(ids: list[Any], configs: dict[str, Config], counts: Counter[str], timings: dict[str, float]) -> set[str]:
    produced = []
    with _timed(timings, "load"):
        views = _views(ids)
    build = time.perf_counter()
    for view in views:
        counts["read"] += 1
        reason = skip_reason(view)
        if reason:
            counts[f"skipped_{reason}"] += 1
            continue
        if view.task not in configs:
            configs[view.task] = config_for(view.task)[0]
        rows = examples_for(view, configs[view.task])
        counts["eligible" if rows else "not_eligible"] += 1
        for row in rows:
            counts[f"tier_{row.score.tier}"] += 1
            counts[f"kind_{row.kind}"] += 1
            if row.pii_found:
                counts["scrubbed"] += 1
                counts.update({f"pii_{kind.lower()}": n for kind, n in row.pii_found.items()})
            produced.append(_example_values(view, row))
    timings["build"] = round(timings.get("build", 0.0) + time.perf_counter() - build, 3)
    with _timed(timings, "store"):
        return _store(ids, produced, counts)


ChunkResult = tuple[set[str], Counter[str], dict[str, float]]


def _chunk_job(ids: list[Any]) -> ChunkResult:
    counts: Counter[str] = Counter()
    timings: dict[str, float] = {}
    touched = _process_chunk(ids, {}, counts, timings)
    return touched, counts, timings


def _worker_init() -> None:
    connections.close_all()  # a forked worker opens its own database connection


def _map_chunks(chunks: list[list[Any]]) -> Iterator[ChunkResult]:
    """Process chunks in CURATION_WORKERS processes (chunks are independent: each owns its
    interactions' examples); in this process when one worker is asked for or there is one chunk."""
    workers = min(settings.CURATION_WORKERS, len(chunks))
    if workers <= 1 or multiprocessing.current_process().daemon:
        yield from map(_chunk_job, chunks)
        return
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init) as pool:
        yield from pool.imap_unordered(_chunk_job, chunks)


def _example_text(prompt: list[dict[str, str]], target: str) -> str:
    return " ".join(m["content"] for m in prompt if m["role"] != "assistant") + "\n" + target


def _deduplicate(task: str, counts: Counter[str]) -> None:
    """Mark exact, then near duplicates among a task's usable examples (per kind): the
    highest-quality example of each cluster stays, the others point to it. Rows are streamed
    and texts loaded only for the near-duplicate pass, one kind at a time."""
    threshold = config_for(task)[1].near_duplicate_threshold
    usable = TrainingExample.objects.filter(task=task).exclude(tier="reject")
    current: dict[int, int | None] = {}
    keys = []
    for pk, kind, digest, quality, duplicate_of in usable.values_list(
        "id", "kind", "content_hash", "quality_score", "duplicate_of_id"
    ).iterator(chunk_size=20_000):
        current[pk] = duplicate_of
        keys.append((pk, f"{kind}:{digest}", quality))
    wanted: dict[int, int] = dedup.exact_duplicates(keys)
    del keys
    counts["duplicates_exact"] += len(wanted)
    for kind in TrainingExample.Kind.values:
        rows = usable.filter(kind=kind).order_by("id").values_list("id", "quality_score", "prompt", "target").iterator(chunk_size=20_000)
        items = [dedup.Item(pk, _example_text(prompt, target), quality) for pk, quality, prompt, target in rows if pk not in wanted]
        near = dedup.near_duplicates(items, threshold=threshold)
        counts["duplicates_near"] += len(near)
        wanted.update(near)
    bulk_set(TrainingExample, "duplicate_of_id", {pk: wanted.get(pk) for pk, was in current.items() if wanted.get(pk) != was})
    # examples that became `reject` keep no duplicate links
    TrainingExample.objects.filter(task=task, tier="reject", duplicate_of__isnull=False).update(duplicate_of=None)


def _refresh_gaps(task: str) -> int:
    threshold = config_for(task)[1].gap_confidence_threshold
    low = (
        Interaction.objects.filter(task=task, confidence__lt=threshold)
        .exclude(subject__opted_out=True)
        .order_by("-created_at")
        .values_list("id", "input_text")[:GAP_SAMPLE]
    )
    clusters = gaps.cluster([(i, pii.scrub(text)[0]) for i, text in low])
    KnowledgeGap.objects.filter(task=task).delete()
    KnowledgeGap.objects.bulk_create(
        KnowledgeGap(
            task=task,
            representative=g.representative,
            size=g.size,
            examples=[{"id": str(i), "text": t} for i, t in zip(g.members, g.texts, strict=False)],
            interaction_ids=[str(i) for i in g.members],
        )
        for g in clusters
    )
    return len(clusters)


def _tasks_with_new_gaps(ids: list[Any]) -> set[str]:
    """Tasks where a changed interaction fell under the task's gap confidence threshold."""
    lowest: dict[str, float] = {}
    for chunk in _chunks(ids, 10_000):
        rows = Interaction.objects.filter(pk__in=chunk, confidence__isnull=False).values("task").annotate(m=Min("confidence"))
        for row in rows:
            lowest[row["task"]] = min(row["m"], lowest.get(row["task"], 1.0))
    return {task for task, value in lowest.items() if value < config_for(task)[1].gap_confidence_threshold}


def curation_run_execute(*, run_id: int, progress: Progress | None = None) -> CurationRun:
    """Run a queued (or interrupted) curation run to the end. Safe to call twice: a finished
    run is returned as it is (django-q2 may deliver a task more than once)."""
    run = CurationRun.objects.get(pk=run_id)
    if run.status in (CurationRun.Status.SUCCEEDED, CurationRun.Status.CANCELLED):
        return run
    started = timezone.now()
    counts: Counter[str] = Counter()
    run.counts, run.log, run.stage_seconds = {}, "", {}
    _save(run, status=CurationRun.Status.RUNNING, started_at=started, progress=0.0, error="")
    try:
        _execute(run, started, counts, progress)
    except Exception:
        logger.exception("curation run %s failed", run.pk)
        run.counts = dict(counts)
        _log(run, "failed")
        _save(run, status=CurationRun.Status.FAILED, error=traceback.format_exc()[-10_000:], finished_at=timezone.now())
        raise
    return run


def _execute(run: CurationRun, started: datetime, counts: Counter[str], progress: Progress | None) -> None:
    since = _since(run)
    timings: dict[str, float] = run.stage_seconds
    with _timed(timings, "select_changed"):
        ids = _changed_ids(run.task, since, started)
    _log(run, f"{len(ids)} interactions changed since {since or 'the beginning'}")
    touched: set[str] = set()
    chunks = max(1, -(-len(ids) // CHUNK))
    for number, (chunk_touched, chunk_counts, chunk_timings) in enumerate(_map_chunks(list(_chunks(ids, CHUNK))), start=1):
        touched |= chunk_touched
        counts.update(chunk_counts)
        for stage, seconds in chunk_timings.items():
            timings[stage] = round(timings.get(stage, 0.0) + seconds, 3)
        run.counts = dict(counts)
        _save(run, progress=round(80.0 * number / chunks, 1))
        if progress:
            progress(80.0 * number / chunks)
    opted_out = TrainingExample.objects.filter(source_interaction__subject__opted_out=True)
    if run.task:
        opted_out = opted_out.filter(task=run.task)
    with _timed(timings, "opted_out"):
        touched |= set(opted_out.values_list("task", flat=True).distinct())
        counts["examples_removed_opted_out"] = opted_out.delete()[1].get("curation.TrainingExample", 0)
    _save(run, progress=85.0)
    for task in sorted(touched):
        with _timed(timings, "dedup"):
            _deduplicate(task, counts)
        _log(run, f"deduplicated {task}")
    _save(run, progress=95.0)
    with _timed(timings, "gaps"):
        for task in sorted(_tasks_with_new_gaps(ids)):
            counts["knowledge_gaps"] += _refresh_gaps(task)
    run.counts = dict(counts)
    _log(run, "done: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    _save(run, status=CurationRun.Status.SUCCEEDED, watermark=started, progress=100.0, finished_at=timezone.now(), stage_seconds=timings)
    if progress:
        progress(100.0)
