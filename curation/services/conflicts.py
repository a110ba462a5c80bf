"""Conflicts between examples: stored by a curation run's deduplication, resolved by a reviewer
(API, admin). A conflict row holds two example keys and figures, never text."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import dedup
from ..models import DuplicateConflict, TrainingExample
from .errors import CurationError
from .examples import example_review

KEEP = tuple(DuplicateConflict.Keep.values)


def conflicts_agreed(*, task: str) -> frozenset[frozenset[int]]:
    """Pairs of examples a reviewer kept both of: never a conflict again."""
    rows = DuplicateConflict.objects.filter(task=task, status=DuplicateConflict.Status.RESOLVED, kept=DuplicateConflict.Keep.BOTH)
    return frozenset(frozenset(pair) for pair in rows.values_list("example_a_id", "example_b_id"))


@transaction.atomic
def conflicts_sync(*, task: str, found: Iterable[tuple[str, dedup.Conflict]]) -> int:
    """Make the task's conflict rows what deduplication found: new pairs created, a pair found
    again updated (reopened if it had been resolved), open pairs no longer found deleted.
    Resolved rows not found again stay: they are the reviewers' decisions. Returns the pairs found."""
    existing = {frozenset((c.example_a_id, c.example_b_id)): c for c in DuplicateConflict.objects.filter(task=task)}
    seen: set[frozenset[int]] = set()
    new, changed = [], []
    for kind, conflict in found:
        pair = frozenset((conflict.kept, conflict.held))
        seen.add(pair)
        values = {
            "example_a_id": conflict.kept,
            "example_b_id": conflict.held,
            "reason": conflict.reason,
            "similarity": conflict.similarity,
        }
        row = existing.get(pair)
        if row is None:
            new.append(DuplicateConflict(task=task, kind=kind, **values))
            continue
        reopened = {"status": DuplicateConflict.Status.OPEN, "kept": "", "resolved_by": "", "resolved_at": None}
        if any(getattr(row, name) != value for name, value in {**values, **reopened}.items()):
            for name, value in {**values, **reopened, "updated_at": timezone.now()}.items():
                setattr(row, name, value)
            changed.append(row)
    stale = [row.pk for pair, row in existing.items() if pair not in seen and row.status == DuplicateConflict.Status.OPEN]
    DuplicateConflict.objects.filter(pk__in=stale).delete()
    fields = ["example_a", "example_b", "reason", "similarity", "status", "kept", "resolved_by", "resolved_at", "updated_at"]
    DuplicateConflict.objects.bulk_update(changed, fields, batch_size=500)
    DuplicateConflict.objects.bulk_create(sorted(new, key=lambda row: (row.example_a_id, row.example_b_id)), batch_size=2000)
    return len(seen)


def _with_duplicates(example_id: int) -> Q:
    """The example and its duplicates (not the examples its conflicts hold out: they point to it too)."""
    held = DuplicateConflict.objects.filter(example_a_id=example_id).values("example_b_id")
    return Q(pk=example_id) | (Q(duplicate_of_id=example_id) & ~Q(pk__in=held))


@transaction.atomic
def conflict_resolve(*, conflict_id: Any, keep: str, resolved_by: str, reviewer: Any = None) -> DuplicateConflict:
    """Keep `a`, `b`, `both` or `neither`: the side(s) not kept are rejected with their
    duplicates (they leave every future dataset, like a reviewer's rejection); a side kept is
    back in datasets at once. `reviewer`: the staff user, when there is one."""
    if keep not in KEEP:
        raise CurationError("The resolution is invalid.", fields={"keep": [f"Must be one of {', '.join(KEEP)}."]})
    conflict = DuplicateConflict.objects.select_for_update().filter(pk=conflict_id).first() if str(conflict_id).isdigit() else None
    if conflict is None:
        raise CurationError("No such conflict.", code="not_found")
    if conflict.status == DuplicateConflict.Status.RESOLVED:
        raise CurationError(f"Conflict {conflict.pk} is already resolved (kept: {conflict.kept}).", code="conflict")
    a, b = conflict.example_a_id, conflict.example_b_id
    rejected = {"a": [b], "b": [a], "both": [], "neither": [a, b]}[keep]
    scope = Q(pk__in=[])
    for example_id in rejected:
        scope |= _with_duplicates(example_id)
    example_review(examples=TrainingExample.objects.filter(scope), approve=False, reviewer=reviewer)
    kept = [x for x in (a, b) if x not in rejected]
    # a kept side held out by this conflict (it points to the other side) is back in datasets
    TrainingExample.objects.filter(pk__in=kept, duplicate_of_id__in=[a, b]).update(duplicate_of=None)
    conflict.status, conflict.kept = DuplicateConflict.Status.RESOLVED, keep
    conflict.resolved_by, conflict.resolved_at = resolved_by[:150], timezone.now()
    conflict.save(update_fields=["status", "kept", "resolved_by", "resolved_at", "updated_at"])
    return conflict
