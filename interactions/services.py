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
from django.db import IntegrityError, connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from learning_platform.db import fast_insert
from learning_platform.errors import DomainError

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
    return RecordResult(REPLAYED, existing)


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
    key = idempotency_key or body_key
    digest = payloads.request_hash(payload) if key else ""
    # No look-up before the insert: the unique key decides, so the common case costs one query less.
    try:
        return _record_new(client, clean, key, digest)
    except IntegrityError:
        existing = Interaction.objects.filter(client=client, idempotency_key=key).first() if key else None
        if existing is None:
            raise
        return _replay(existing, digest, key)  # a replay, or a concurrent request with the same key won


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
    fast_insert(Candidate, candidates)
    return RecordResult(CREATED, interaction)


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
    try:
        # Optimistic first: no look-up of the keys; the unique constraint catches a replay.
        return _record_batch(client, cleaned, look_up_keys=False)
    except IntegrityError:
        # Some key is known (a replay), or a concurrent request stored it first: look them up.
        return _record_batch(client, cleaned, look_up_keys=True)


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
    return result


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


def interaction_get(*, client: ApiClient, interaction_id: Any) -> Interaction:
    try:
        return Interaction.objects.get(client=client, pk=interaction_id)
    except (Interaction.DoesNotExist, ValidationError, ValueError, TypeError):
        raise InteractionError("No such interaction.", code="not_found") from None


@transaction.atomic
def feedback_create(*, client: ApiClient, interaction_id: Any, payload: Any) -> Feedback:
    """Attach feedback of any kind; a choice marks its candidate chosen (the latest choice wins)."""
    try:
        clean = payloads.validate_feedback(payload, limits())
    except payloads.PayloadError as exc:
        raise InteractionError("The feedback is invalid; nothing was stored.", fields=exc.errors) from None
    interaction = interaction_get(client=client, interaction_id=interaction_id)
    rank = clean.pop("candidate_rank", None)
    if rank is not None:
        candidate = Candidate.objects.select_for_update().filter(interaction=interaction, rank=rank).first()
        if candidate is None:
            raise InteractionError(
                "The choice names no candidate of this interaction.",
                fields={"candidate_rank": [f"This interaction has no candidate with rank {rank}."]},
            )
        Candidate.objects.filter(interaction=interaction).exclude(pk=candidate.pk).update(is_chosen=False)
        Candidate.objects.filter(pk=candidate.pk).update(is_chosen=True)
        clean["candidate"] = candidate
    return Feedback.objects.create(interaction=interaction, **clean)


# --- Subjects: opt-out and erasure -----------------------------------------------------------


def subject_find(*, client: ApiClient, user_id: str) -> Subject:
    subject = Subject.objects.filter(client=client, user_hash=subject_hash(client=client, user_id=user_id)).first()
    if subject is None:
        raise InteractionError("No data is stored for this user.", code="not_found")
    return subject


def subject_opt_out(*, client: ApiClient, user_id: str) -> Subject:
    """From now on this user's interactions are counted, not stored; curation skips the rest."""
    subject = subject_get_or_create(client=client, user_id=user_id)
    if not subject.opted_out:
        Subject.objects.filter(pk=subject.pk).update(opted_out=True, opted_out_at=timezone.now())
        subject.refresh_from_db()
    return subject


def subject_erase(*, client: ApiClient, user_id: str, requested_by: str) -> ErasureRequest:
    return subject_erase_by_subject(subject=subject_find(client=client, user_id=user_id), requested_by=requested_by)


@transaction.atomic
def subject_erase_by_subject(*, subject: Subject, requested_by: str) -> ErasureRequest:
    """Delete everything stored about a subject, let later apps erase what they derived
    (`subject_erased` signal, sent before the rows go), and keep an audit without personal data."""
    subject = Subject.objects.select_for_update().get(pk=subject.pk)
    interaction_ids = list(Interaction.objects.filter(subject=subject).values_list("pk", flat=True))
    counts: dict[str, int] = {}
    for _receiver, derived in subject_erased.send(
        sender=Subject, client=subject.client, subject_id=subject.pk, subject_hash=subject.user_hash, interaction_ids=interaction_ids
    ):
        for table, number in (derived or {}).items():
            counts[table] = counts.get(table, 0) + number
    rows = Interaction.objects.filter(subject=subject)
    counts["feedback"] = _delete(Feedback.objects.filter(interaction__in=rows))
    counts["candidates"] = _delete(Candidate.objects.filter(interaction__in=rows))
    counts["client_contexts"] = _delete(ClientContext.objects.filter(interaction__in=rows))
    counts["interactions"] = _delete(rows)
    counts["subjects"] = _delete(Subject.objects.filter(pk=subject.pk))
    return ErasureRequest.objects.create(client=subject.client, subject_hash=subject.user_hash, requested_by=requested_by, counts=counts)


# --- Retention -------------------------------------------------------------------------------


def client_context_purge(*, older_than_days: int | None = None) -> int:
    """Delete IP addresses and user agents older than the retention period; returns the count."""
    days = settings.CLIENT_CONTEXT_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = timezone.now() - timedelta(days=days)
    return _delete(ClientContext.objects.filter(created_at__lt=cutoff))


def _delete(queryset: QuerySet[Any]) -> int:
    """One DELETE statement, children first by the caller: no row-by-row cascade collection."""
    return queryset._raw_delete(queryset.db)
