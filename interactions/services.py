"""Writes of the interactions app: record interactions and feedback, opt-out, erasure, keys.

The API, the admin, management commands and tasks all call these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, F, QuerySet, Value, When
from django.utils import timezone

from learning_platform.admin_log import admin_log_forget
from learning_platform.db import fast_insert
from learning_platform.errors import DomainError
from learning_platform.retry import FOREIGN_KEY_VIOLATION, is_retryable, retry_transaction, sqlstate

from . import payloads
from .auth import client_cache, generate_api_key, hash_api_key
from .models import SCOPES, ApiClient, Candidate, ClientContext, ErasureRequest, Feedback, Interaction, Subject
from .signals import subject_erased

logger = logging.getLogger(__name__)

CREATED, REPLAYED, NOT_STORED = "created", "replayed", "not_stored"


class InteractionError(DomainError):
    """A request the interactions app refuses; nothing was stored."""


@dataclass
class RecordResult:
    status: str
    interaction: Interaction | None = None
    candidates: list[tuple[int, int]] = field(default_factory=list)  # (id, rank) of each candidate


@dataclass
class BatchResult:
    results: list[dict[str, Any]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r["status"] == status)


def limits() -> payloads.Limits:
    return payloads.Limits(
        max_text_bytes=settings.MAX_TEXT_BYTES,
        max_metadata_bytes=settings.MAX_METADATA_BYTES,
        max_messages=settings.MAX_MESSAGES,
        max_candidates=settings.MAX_CANDIDATES,
    )


def subject_hash(*, client: ApiClient, user_id: str) -> str:
    """HMAC of the client's user id, scoped to the client: the raw id is never stored."""
    message = f"{client.pk}:{user_id}".encode()
    return hmac.new(settings.SUBJECT_HASH_KEY.encode(), message, hashlib.sha256).hexdigest()


# --- API clients -----------------------------------------------------------------------------


def api_client_create(*, name: str, scopes: list[str]) -> tuple[ApiClient, str]:
    """Create a client and return it with its key; the key is shown once and never stored."""
    unknown = set(scopes) - set(SCOPES)
    if not name.strip():
        raise InteractionError("A client needs a name.", fields={"name": ["May not be blank."]})
    if unknown or not scopes:
        raise InteractionError(
            f"Scopes must be among {', '.join(SCOPES)}.", fields={"scopes": [f"Unknown: {', '.join(sorted(unknown)) or 'none given'}"]}
        )
    if ApiClient.objects.filter(name=name).exists():
        raise InteractionError(f"A client named {name!r} already exists.", code="conflict", fields={"name": ["Taken."]})
    key = generate_api_key()
    client = ApiClient.objects.create(name=name, scopes=sorted(set(scopes)), key_prefix=key[:10], key_hash=hash_api_key(key))
    return client, key


def api_client_rotate_key(*, client: ApiClient) -> str:
    key = generate_api_key()
    client.key_prefix, client.key_hash = key[:10], hash_api_key(key)
    client.save(update_fields=["key_prefix", "key_hash"])
    client_cache.clear()
    return key


# --- Recording interactions ------------------------------------------------------------------


def _validated(item: Any) -> dict[str, Any]:
    try:
        return payloads.validate_interaction(item, limits())
    except payloads.PayloadError as exc:
        raise InteractionError("The interaction is invalid; nothing was stored.", fields=exc.errors) from None


_NOT_COLUMNS = ("user_id", "idempotency_key", "candidates", "client_context")


def _row(client_id: int, subject_id: int | None, clean: dict[str, Any], key: str, digest: str) -> dict[str, Any]:
    """An interaction row as {attname: value}, ready for `fast_insert` or `Interaction(**row)`."""
    row = {k: v for k, v in clean.items() if k not in _NOT_COLUMNS}
    row.update(id=uuid.uuid4(), client_id=client_id, subject_id=subject_id, idempotency_key=key, request_hash=digest)
    return row


def _children(interaction_id: uuid.UUID, clean: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    contexts = []
    context = clean.get("client_context")
    if context and (context["ip_address"] or context["user_agent"]):
        contexts.append({"interaction_id": interaction_id, **context})
    candidates = [{"interaction_id": interaction_id, **c} for c in clean.get("candidates", ())]
    return contexts, candidates


def _replay(existing: Interaction, digest: str, key: str) -> RecordResult:
    if existing.request_hash != digest:
        raise InteractionError(
            f"Idempotency key {key!r} was already used with a different body.",
            code="conflict",
            fields={"idempotency_key": ["Already used with a different body."]},
        )
    ranked = Candidate.objects.filter(interaction=existing).order_by("rank").values_list("pk", "rank")
    return RecordResult(REPLAYED, existing, list(ranked))


def _suppress(subject_ids: list[int]) -> None:
    """Count interactions of opted-out subjects without storing them."""
    for subject_id in set(subject_ids):
        Subject.objects.filter(pk=subject_id).update(suppressed_interactions=F("suppressed_interactions") + subject_ids.count(subject_id))


def subject_get_or_create(*, client: ApiClient, user_id: str) -> Subject:
    subject, _ = Subject.objects.get_or_create(client=client, user_hash=subject_hash(client=client, user_id=user_id))
    return subject


def interaction_record(*, client: ApiClient, payload: Any, idempotency_key: str = "") -> RecordResult:
    """Store one interaction (with its candidates and client context) or replay an earlier one.

    A replay under the same idempotency key answers with the original; the same key with a
    different body raises a conflict. An opted-out subject's interaction is counted, not stored.
    """
    clean = _validated(payload)
    body_key = clean.get("idempotency_key", "")
    if idempotency_key and body_key and body_key != idempotency_key:
        raise InteractionError(
            "The Idempotency-Key header and the idempotency_key field differ.", fields={"idempotency_key": ["Differs from the header."]}
        )
    if idempotency_key and (problem := payloads.idempotency_key_problem(idempotency_key)):
        raise InteractionError(f"The Idempotency-Key header is refused: {problem}", fields={"idempotency_key": [problem]})
    key = idempotency_key or body_key
    digest = payloads.request_hash(payload) if key else ""

    def record() -> RecordResult:
        # No look-up before the insert: the unique key decides, so the common case costs one query less.
        try:
            return _record_new(client, clean, key, digest)
        except IntegrityError:
            existing = Interaction.objects.filter(client=client, idempotency_key=key).first() if key else None
            if existing is None:
                raise
            return _replay(existing, digest, key)  # a replay, or a concurrent request with the same key won

    # A foreign-key violation: the subject was erased while this request stored under it. Once
    # more, the look-up finds no subject and the interaction is stored under a fresh one.
    return retry_transaction(record, attempts=3, also=frozenset({FOREIGN_KEY_VIOLATION}))


def _record_new(client: ApiClient, clean: dict[str, Any], key: str, digest: str) -> RecordResult:
    user_hash = subject_hash(client=client, user_id=clean["user_id"]) if clean.get("user_id") else None
    subject = _subject_if_known(client, user_hash) if user_hash else None
    if subject is not None and subject.opted_out:
        _suppress([subject.pk])
        return RecordResult(NOT_STORED)
    interaction = Interaction(**_row(client.pk, subject.pk if subject else None, clean, key, digest))
    interaction.client, interaction.subject = client, subject
    contexts, candidates = _children(interaction.pk, clean)
    if (subject is None and user_hash) or contexts or candidates:
        return _record_new_with_rows(interaction, contexts, candidates, user_hash)
    # The common case, a known (or no) subject and no child rows, is one INSERT, atomic by itself;
    # inside a caller's transaction it needs a savepoint so a duplicate key leaves that usable.
    with transaction.atomic() if connection.in_atomic_block else nullcontext():
        interaction.save(force_insert=True)
    return RecordResult(CREATED, interaction)


def _subject_if_known(client: ApiClient, user_hash: str) -> Subject | None:
    # values_list skips model loading and ordering: this look-up is on every ingest request.
    found = list(Subject.objects.filter(client=client, user_hash=user_hash).values_list("pk", "opted_out")[:1])
    return Subject(pk=found[0][0], client=client, user_hash=user_hash, opted_out=found[0][1]) if found else None


@transaction.atomic
def _record_new_with_rows(
    interaction: Interaction, contexts: list[dict[str, Any]], candidates: list[dict[str, Any]], user_hash: str | None
) -> RecordResult:
    if user_hash and interaction.subject is None:
        interaction.subject, _ = Subject.objects.get_or_create(client=interaction.client, user_hash=user_hash)
        if interaction.subject.opted_out:  # opted out by a concurrent request since the look-up
            _suppress([interaction.subject.pk])
            return RecordResult(NOT_STORED)
    interaction.save(force_insert=True)
    fast_insert(ClientContext, contexts)
    # bulk_create, not COPY: the answer names each candidate's id (at most MAX_CANDIDATES rows).
    stored = Candidate.objects.bulk_create([Candidate(**c) for c in candidates])
    return RecordResult(CREATED, interaction, [(c.pk, c.rank) for c in stored])


def interaction_record_batch(*, client: ApiClient, items: Any) -> BatchResult:
    """Store a batch all-or-nothing. Invalid items are reported by index and nothing is stored."""
    if not isinstance(items, list) or not items:
        raise InteractionError("Send a non-empty list of interactions.", fields={"items": ["Must be a non-empty list."]})
    if len(items) > settings.BATCH_MAX_ITEMS:
        raise InteractionError(
            f"A batch holds at most {settings.BATCH_MAX_ITEMS} interactions; this one has {len(items)}.",
            fields={"items": [f"At most {settings.BATCH_MAX_ITEMS} items."]},
        )
    cleaned, errors, seen_keys = [], {}, set()
    check_limits = limits()
    for index, item in enumerate(items):
        try:
            clean = payloads.validate_interaction(item, check_limits)
        except payloads.PayloadError as exc:
            errors[str(index)] = exc.errors
            continue
        key = clean.get("idempotency_key", "")
        if key and key in seen_keys:
            errors[str(index)] = {"idempotency_key": ["Repeats the key of an earlier item in this batch."]}
        seen_keys.add(key)
        cleaned.append((clean, payloads.request_hash(item) if key else ""))
    if errors:
        raise InteractionError(f"{len(errors)} of {len(items)} items are invalid; nothing was stored.", fields=errors)
    return _record_batch_retrying(client, cleaned)


def _record_batch_retrying(client: ApiClient, cleaned: list[tuple[dict[str, Any], str]], attempts: int = 4) -> BatchResult:
    """Optimistic first: no look-up of the keys. A unique violation means some key is known (a
    replay) or a concurrent request stored it first: look the keys up. A foreign-key violation
    means a subject was erased meanwhile, a deadlock that the database chose this batch: again."""
    look_up = False
    for attempt in range(1, attempts + 1):
        try:
            return _record_batch(client, cleaned, look_up_keys=look_up)
        except DatabaseError as exc:
            unique = isinstance(exc, IntegrityError) and sqlstate(exc) != FOREIGN_KEY_VIOLATION
            if attempt == attempts:
                raise
            if not unique and not is_retryable(exc, also=frozenset({FOREIGN_KEY_VIOLATION})):
                raise
            look_up = look_up or unique
    raise AssertionError("unreachable")


@transaction.atomic
def _record_batch(client: ApiClient, cleaned: list[tuple[dict[str, Any], str]], *, look_up_keys: bool) -> BatchResult:
    keys = [clean["idempotency_key"] for clean, _ in cleaned if clean.get("idempotency_key")]
    existing = {}
    if keys and look_up_keys:
        existing = {
            i.idempotency_key: i
            for i in Interaction.objects.filter(client=client, idempotency_key__in=keys).only("pk", "idempotency_key", "request_hash")
        }
    subjects = _subjects_for(client, [clean["user_id"] for clean, _ in cleaned if clean.get("user_id")])
    result, new, contexts, candidates, suppressed = BatchResult(), [], [], [], []
    for index, (clean, digest) in enumerate(cleaned):
        key = clean.get("idempotency_key", "")
        if key in existing:
            if existing[key].request_hash != digest:
                raise InteractionError(
                    f"Item {index}: idempotency key {key!r} was already used with a different body; nothing was stored.",
                    code="conflict",
                    fields={str(index): {"idempotency_key": ["Already used with a different body."]}},
                )
            result.results.append({"index": index, "status": REPLAYED, "id": str(existing[key].pk)})
            continue
        subject = subjects[clean["user_id"]] if clean.get("user_id") else None
        if subject is not None and subject.opted_out:
            suppressed.append(subject.pk)
            result.results.append({"index": index, "status": NOT_STORED, "id": None})
            continue
        row = _row(client.pk, subject.pk if subject else None, clean, key, digest)
        new.append(row)
        item_contexts, item_candidates = _children(row["id"], clean)
        contexts += item_contexts
        candidates += item_candidates
        result.results.append({"index": index, "status": CREATED, "id": str(row["id"])})
    fast_insert(Interaction, new)
    fast_insert(ClientContext, contexts)
    fast_insert(Candidate, candidates)
    _suppress(suppressed)
    if candidates:
        _name_candidates(result, {c["interaction_id"] for c in candidates})
    return result


def _name_candidates(result: BatchResult, interaction_ids: set[uuid.UUID]) -> None:
    """Add {id, rank} of each stored candidate to its item's result (COPY returns no ids)."""
    named: dict[str, list[dict[str, int]]] = {}
    rows = Candidate.objects.filter(interaction_id__in=interaction_ids).order_by("rank")
    for interaction_id, pk, rank in rows.values_list("interaction_id", "pk", "rank"):
        named.setdefault(str(interaction_id), []).append({"id": pk, "rank": rank})
    for item in result.results:
        if item["id"] in named:
            item["candidates"] = named[item["id"]]


class SubjectRef(NamedTuple):
    pk: int
    opted_out: bool


def _subjects_for(client: ApiClient, user_ids: list[str]) -> dict[str, SubjectRef]:
    """Fetch or create the subjects of many user ids in a few queries (tuples, not models: fast)."""
    if not user_ids:
        return {}
    hashes = {user_id: subject_hash(client=client, user_id=user_id) for user_id in set(user_ids)}

    def fetch() -> dict[str, SubjectRef]:
        rows = Subject.objects.filter(client=client, user_hash__in=hashes.values()).values_list("user_hash", "pk", "opted_out")
        return {user_hash: SubjectRef(pk, opted_out) for user_hash, pk, opted_out in rows}

    found = fetch()
    missing = [Subject(client=client, user_hash=h) for h in set(hashes.values()) - found.keys()]
    if missing:
        Subject.objects.bulk_create(missing, ignore_conflicts=True)
        found = fetch()
    return {user_id: found[h] for user_id, h in hashes.items()}


# --- Feedback --------------------------------------------------------------------------------


def interaction_get(*, client: ApiClient, interaction_id: Any, lock: bool = False) -> Interaction:
    """One of the client's interactions; `lock` takes its row lock (inside a transaction)."""
    rows = Interaction.objects.select_for_update(no_key=True) if lock else Interaction.objects
    try:
        return rows.get(client=client, pk=interaction_id)
    except (Interaction.DoesNotExist, ValidationError, ValueError, TypeError):
        raise InteractionError("No such interaction.", code="not_found") from None


def feedback_create(*, client: ApiClient, interaction_id: Any, payload: Any) -> Feedback:
    """Attach feedback of any kind; a choice marks its candidate chosen (the latest choice wins).

    Locks are taken in one order, the interaction row first, then its candidates, then the new
    feedback row, so concurrent feedback on one interaction queues instead of deadlocking.
    """
    try:
        clean = payloads.validate_feedback(payload, limits())
    except payloads.PayloadError as exc:
        raise InteractionError("The feedback is invalid; nothing was stored.", fields=exc.errors) from None
    choice = (clean.pop("candidate_id", None), clean.pop("candidate_rank", None))
    return retry_transaction(lambda: _feedback_store(client, interaction_id, clean, *choice))


@transaction.atomic
def _feedback_store(client: ApiClient, interaction_id: Any, clean: dict[str, Any], candidate_id: int | None, rank: int | None) -> Feedback:
    interaction = interaction_get(client=client, interaction_id=interaction_id, lock=True)
    candidate = None
    if candidate_id is not None or rank is not None:
        candidate = _chosen_candidate(interaction, candidate_id, rank)
        chosen = Case(When(pk=candidate.pk, then=Value(True)), default=Value(False))
        Candidate.objects.filter(interaction=interaction).update(is_chosen=chosen)
    return Feedback.objects.create(interaction=interaction, candidate=candidate, **clean)


def _chosen_candidate(interaction: Interaction, candidate_id: int | None, rank: int | None) -> Candidate:
    named = {"pk": candidate_id} if candidate_id is not None else {"rank": rank}
    candidate = Candidate.objects.filter(interaction=interaction, **named).first()
    if candidate is None:
        field, what = ("candidate_id", f"id {candidate_id}") if candidate_id is not None else ("candidate_rank", f"rank {rank}")
        ranks = list(Candidate.objects.filter(interaction=interaction).order_by("rank").values_list("rank", flat=True))
        raise InteractionError(
            "The choice names no candidate of this interaction.",
            fields={field: [f"This interaction has no candidate with {what} (its 0-based ranks: {ranks})."]},
        )
    return candidate


# --- Subjects: opt-out and erasure -----------------------------------------------------------


def subject_find(*, client: ApiClient, user_id: str) -> Subject:
    subject = Subject.objects.filter(client=client, user_hash=subject_hash(client=client, user_id=user_id)).first()
    if subject is None:
        raise InteractionError("No data is stored for this user.", code="not_found")
    return subject


def subject_opt_out(*, client: ApiClient, user_id: str) -> Subject:
    """From now on this user's interactions are counted, not stored; curation skips the rest."""
    for _attempt in range(3):
        subject = subject_get_or_create(client=client, user_id=user_id)
        if subject.opted_out:
            return subject
        if Subject.objects.filter(pk=subject.pk).update(opted_out=True, opted_out_at=timezone.now()):
            subject.refresh_from_db()
            return subject
        # Erased between the two statements: the user opts out again, as a fresh subject.
    raise InteractionError("The user's data changed during the opt-out; try again.", code="conflict")


def subject_erase(*, client: ApiClient, user_id: str, requested_by: str) -> ErasureRequest:
    return subject_erase_by_subject(subject=subject_find(client=client, user_id=user_id), requested_by=requested_by)


def subject_erase_by_subject(*, subject: Subject, requested_by: str) -> ErasureRequest:
    """Delete everything stored about a subject, let later apps erase what they derived
    (`subject_erased` signal, sent before the rows go), and keep an audit without personal data.

    Idempotent under concurrency: the subject's row lock queues concurrent erasures, and those
    that find it gone answer not_found. Locks go subject first, then its interactions (feedback
    locks an interaction before its candidates), so an erasure and feedback cannot deadlock; a
    foreign-key violation (a row added under the subject meanwhile) or a deadlock runs it again.
    """
    work = lambda: _erase(subject.pk, requested_by)  # noqa: E731
    return retry_transaction(work, also=frozenset({FOREIGN_KEY_VIOLATION}))


@transaction.atomic
def _erase(subject_pk: int, requested_by: str) -> ErasureRequest:
    subject = Subject.objects.select_for_update().select_related("client").filter(pk=subject_pk).first()
    if subject is None:
        raise InteractionError("No data is stored for this user (erased already).", code="not_found")
    locked = Interaction.objects.select_for_update().filter(subject=subject).order_by("pk")
    interaction_ids = list(locked.values_list("pk", flat=True))
    # the record first (its id names the erasure in what later apps do: rollbacks, retrainings)
    erasure = ErasureRequest.objects.create(client=subject.client, subject_hash=subject.user_hash, requested_by=requested_by)
    texts = _texts_of(interaction_ids)
    counts: dict[str, int] = {}
    pending: list[str] = []
    for _receiver, derived in subject_erased.send(
        sender=Subject, client=subject.client, subject_id=subject.pk, subject_hash=subject.user_hash,
        interaction_ids=interaction_ids, erasure_id=erasure.pk,
    ):  # fmt: skip
        for table, number in (derived or {}).items():
            if table == "pending":
                pending += number
            else:
                counts[table] = counts.get(table, 0) + number
    rows = Interaction.objects.filter(subject=subject)
    owned = [(Interaction, interaction_ids), (Subject, [subject.pk])]
    owned += [(model, model.objects.filter(interaction__in=rows).values_list("pk", flat=True)) for model in (Feedback, Candidate)]
    counts["admin_log_entries"] = counts.get("admin_log_entries", 0) + admin_log_forget(objects=owned, texts=texts)
    counts["feedback"] = _delete(Feedback.objects.filter(interaction__in=rows))
    counts["candidates"] = _delete(Candidate.objects.filter(interaction__in=rows))
    counts["client_contexts"] = _delete(ClientContext.objects.filter(interaction__in=rows))
    counts["interactions"] = _delete(rows)
    counts["subjects"] = _delete(Subject.objects.filter(pk=subject.pk))
    erasure.counts, erasure.pending = counts, pending
    erasure.save(update_fields=["counts", "pending"])
    return erasure


def _texts_of(interaction_ids: list[Any]) -> list[str]:
    """The subject's own texts (queries, answers, messages, corrections, candidates): what an
    admin log entry could quote."""
    texts: list[str] = []
    for input_text, output_text, messages in Interaction.objects.filter(pk__in=interaction_ids).values_list(
        "input_text", "output_text", "messages"
    ):
        texts += [input_text, output_text, *(str(m.get("content", "")) for m in messages or [] if isinstance(m, dict))]
    texts += Feedback.objects.filter(interaction_id__in=interaction_ids).values_list("correction", flat=True)
    texts += Candidate.objects.filter(interaction_id__in=interaction_ids).values_list("text", flat=True)
    return texts


# --- Retention -------------------------------------------------------------------------------


def client_context_purge(*, older_than_days: int | None = None) -> int:
    """Delete IP addresses and user agents older than the retention period; returns the count."""
    days = settings.CLIENT_CONTEXT_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return _delete(ClientContext.objects.filter(created_at__lt=cutoff))


def _delete(queryset: QuerySet[Any]) -> int:
    """One DELETE statement, children first by the caller: no row-by-row cascade collection."""
    return queryset._raw_delete(queryset.db)
