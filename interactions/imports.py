"""Interactions that arrive with the feedback they imply (imported data sets, git history).

`interaction_import_batch` stores each item (an interaction payload and its feedback payloads)
whole or not at all, through the same validators and the same batch insert as live traffic
(`interaction_record_batch`); the feedback, the same few payloads again and again, goes in with
one INSERT per distinct payload. The fast path stores a chunk in one transaction; when the database
refuses the chunk, every item is stored again in a transaction of its own, so one bad item never
takes the others with it. Items carry their idempotency key: a second import replays, adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from learning_platform.db import fast_insert

from . import payloads
from .models import ApiClient, Candidate, Feedback, Interaction
from .services import CREATED, InteractionError, interaction_record_batch, limits

logger = logging.getLogger(__name__)
REFUSED = "refused"
VARYING = ("interaction_id", "candidate_id")  # the feedback columns that differ within a group


@dataclass
class ImportItem:
    interaction: dict[str, Any]
    feedback: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ItemResult:
    status: str  # created, replayed, not_stored or refused
    id: str | None = None
    errors: dict[str, Any] = field(default_factory=dict)


def _problems(item: ImportItem, check: payloads.Limits, *, interaction: bool, seen: dict[str, Any]) -> dict[str, Any]:
    """Validation errors of an item: its feedback's (cleaned into the item on success) and, when
    asked, its interaction's (otherwise the batch insert checks it, once)."""
    errors: dict[str, Any] = {}
    if interaction:
        try:
            payloads.validate_interaction(item.interaction, check)
        except payloads.PayloadError as exc:
            errors.update(exc.errors)
    cleaned = []
    for index, feedback in enumerate(item.feedback):
        # an import implies the same few feedback payloads again and again: each is checked once
        # (repr tells 1 from True and 1.0; a payload in another key order is only checked again)
        memo = repr(feedback)
        try:
            if memo not in seen:
                seen[memo] = payloads.validate_feedback(feedback, check)
            cleaned.append(seen[memo])
        except payloads.PayloadError as exc:
            errors[f"feedback.{index}"] = exc.errors
    if not item.interaction.get("idempotency_key"):
        errors["idempotency_key"] = ["An imported item needs an idempotency key."]
    item.feedback = cleaned if not errors else item.feedback
    return errors


Group = tuple[list[str], list[int | None]]  # interaction ids, and the candidate each one names
Groups = dict[tuple[tuple[str, Any], ...], Group]  # by the cleaned payload's items


def _feedback_groups(items: list[ImportItem], results: list[dict[str, Any]]) -> tuple[Groups, list[int]]:
    """The created items' feedback (already cleaned), grouped by what it says: an import implies
    the same few payloads again and again. Also the candidates the choices mark chosen."""
    groups: Groups = {}
    chosen = []
    for item, stored in zip(items, results, strict=True):
        if stored["status"] != CREATED:
            continue
        for clean in item.feedback:
            candidate_id, rank = clean.get("candidate_id"), clean.get("candidate_rank")
            if rank is not None:
                ranked = stored.get("candidates", ())
                candidate_id = next((c["id"] for c in ranked if c["rank"] == rank), None)
                if candidate_id is None:
                    raise InteractionError("A choice names a candidate the item does not have.")
                chosen.append(candidate_id)
            # cleaned values are str and int (never a bool or a float): its items are a safe key
            ids, candidates = groups.setdefault(tuple(clean.items()), ([], []))
            ids.append(stored["id"])
            candidates.append(candidate_id)
    return groups, chosen


def _shared_columns(payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    """{attname: value} of a group's feedback rows but the varying ones: what the payload says,
    the model's defaults for the rest (as fast_insert fills them)."""
    return {
        f.attname: now if getattr(f, "auto_now_add", False) else payload.get(f.name, f.get_default())
        for f in Feedback._meta.concrete_fields
        if not f.primary_key and f.attname not in VARYING
    }


def _feedback_sql(shared: list[str]) -> str:
    """INSERT of a group: the shared columns' values are parameters, then its interaction ids and
    candidate ids as comma-separated text (one parameter each, not a thousand values to adapt;
    '' is no candidate, and unnest pads a shorter array, as '' alone splits to none, with NULL)."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(Feedback._meta.get_field(n).column) for n in (*VARYING, *shared))
    return (  # names from model metadata, values are parameters
        f"INSERT INTO {quote(Feedback._meta.db_table)} ({names}) "  # noqa: S608
        f"SELECT i, c, {', '.join(['%s'] * len(shared))} FROM unnest("
        "string_to_array(%s, ',')::uuid[], string_to_array(%s, ',', '')::bigint[]) AS t(i, c)"
    )


def _insert_feedback(groups: Groups) -> None:
    """One INSERT per group on PostgreSQL: no row is built in Python. Elsewhere fast_insert."""
    now = timezone.now()
    for key, (ids, candidates) in groups.items():
        shared = _shared_columns({k: v for k, v in key if k not in ("candidate_id", "candidate_rank")}, now)
        if connection.vendor != "postgresql":
            pairs = zip(ids, candidates, strict=True)
            fast_insert(Feedback, [{**shared, VARYING[0]: i, VARYING[1]: c} for i, c in pairs])
            continue
        arrays = ",".join(ids), ",".join("" if c is None else str(c) for c in candidates)
        # psycopg's own cursor, as fast_insert's COPY: with DEBUG on, Django's would keep the
        # statement with its thousand ids in connection.queries, chunk after chunk
        with connection.wrap_database_errors, connection.cursor() as cursor:
            cursor.cursor.execute(_feedback_sql(list(shared)), [*shared.values(), *arrays])


def _store(client: ApiClient, items: list[ImportItem]) -> list[ItemResult]:
    """Store valid items in one transaction: all of them with their feedback, or none."""
    with transaction.atomic():
        _commit_without_waiting()
        batch = interaction_record_batch(client=client, items=[i.interaction for i in items])
        groups, chosen = _feedback_groups(items, batch.results)
        _insert_feedback(groups)
        if chosen:
            Candidate.objects.filter(pk__in=chosen).update(is_chosen=True)
    return [ItemResult(r["status"], r["id"]) for r in batch.results]


def _commit_without_waiting() -> None:
    """This transaction's commit does not wait for its WAL to reach the disk (PostgreSQL).

    A crash can lose the last imported chunks, never half of one, and never what came before a
    commit that waited: the run's own row is written by ordinary commits, which flush all WAL
    before them, so a run that says "succeeded" is on disk. What a crash lost, the same import
    (idempotent) stores again. Live traffic keeps waiting commits."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")


def _store_one(client: ApiClient, item: ImportItem) -> ItemResult:
    try:
        return _store(client, [item])[0]
    except InteractionError as exc:
        return ItemResult(REFUSED, errors=exc.fields or {"non_field_errors": [str(exc)]})
    except DatabaseError as exc:
        logger.warning("import: an item was refused by the database", exc_info=True)
        return ItemResult(REFUSED, errors={"non_field_errors": [f"The database refused it: {type(exc).__name__}"]})


def interaction_import_batch(*, client: ApiClient, items: list[ImportItem], store: bool = True) -> list[ItemResult]:
    """One result per item, in order. Invalid items are refused with their errors; the rest are
    stored (or, with `store=False`, reported as what a real run would do: created or replayed)."""
    check = limits()
    results: list[ItemResult | None] = []
    valid: list[tuple[int, ImportItem]] = []
    seen: dict[str, Any] = {}
    for index, item in enumerate(items):
        errors = _problems(item, check, interaction=not store, seen=seen)
        results.append(ItemResult(REFUSED, errors=errors) if errors else None)
        if not errors:
            valid.append((index, item))
    if not store:
        return _would_be(client, items, results)
    if valid:
        for (index, _), outcome in zip(valid, _store_chunk(client, [i for _, i in valid]), strict=True):
            results[index] = outcome
    return [r for r in results if r is not None]


def _store_chunk(client: ApiClient, items: list[ImportItem], *, again: bool = True) -> list[ItemResult]:
    """All at once; the items the batch refuses (by index) are refused, the others stored again
    together; any other failure stores them one by one."""
    try:
        return _store(client, items)
    except InteractionError as exc:
        named = {int(k): v for k, v in (exc.fields or {}).items() if str(k).isdigit()}
        if not again or not named or not set(named) <= set(range(len(items))):
            return [_store_one(client, item) for item in items]
        rest = [i for i in range(len(items)) if i not in named]
        stored = iter(_store_chunk(client, [items[i] for i in rest], again=False) if rest else [])
        return [ItemResult(REFUSED, errors=named[i]) if i in named else next(stored) for i in range(len(items))]
    except DatabaseError:
        logger.info("import: a chunk of %d items was refused by the database; storing them one by one", len(items))
        return [_store_one(client, item) for item in items]


def _would_be(client: ApiClient, items: list[ImportItem], results: list[ItemResult | None]) -> list[ItemResult]:
    keys = [i.interaction["idempotency_key"] for i, r in zip(items, results, strict=True) if r is None]
    known = dict(Interaction.objects.filter(client=client, idempotency_key__in=keys).values_list("idempotency_key", "pk"))
    out = []
    for item, result in zip(items, results, strict=True):
        if result is None:
            key = item.interaction["idempotency_key"]
            result = ItemResult("replayed", str(known[key])) if key in known else ItemResult(CREATED)
        out.append(result)
    return out
