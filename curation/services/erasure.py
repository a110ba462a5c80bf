"""What curation forgets when interactions erases a subject (curation/receivers.py calls this
inside the erasure's transaction): examples, dataset items (their datasets tainted, stats
recomputed), knowledge gaps rebuilt without their queries, exported files, admin history."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from interactions.models import Interaction
from learning_platform.admin_log import admin_log_forget

from .. import gaps, pii
from ..models import Dataset, DatasetItem, KnowledgeGap, TrainingExample
from ..signals import datasets_tainted
from .datasets import datasets_restat
from .exports import exports_delete

GAP_EXAMPLES = 5  # as many example queries as a curation run keeps per gap


def derived_erase(*, subject_hash: str, interaction_ids: list[Any], erasure_id: int | None = None) -> dict[str, Any]:
    """Forget what curation derived from these interactions; returns counts for the erasure
    record (with the registry's, who hears `datasets_tainted`) and `pending` lines."""
    if not interaction_ids:
        return {}
    dataset_ids = _lock_datasets_holding(interaction_ids)
    reason = (
        f"Held data of a subject erased on {timezone.now():%Y-%m-%d %H:%M} UTC (erasure {erasure_id}, "
        f"subject {subject_hash[:12]}…); those items were removed."
    )
    for dataset in Dataset.objects.filter(pk__in=dataset_ids):
        dataset.tainted = True
        dataset.tainted_reason = (dataset.tainted_reason + "\n" + reason).strip()
        dataset.save(update_fields=["tainted", "tainted_reason"])
    items = DatasetItem.objects.filter(source_interaction_id__in=interaction_ids)
    item_ids = list(items.values_list("pk", flat=True))
    counts: dict[str, Any] = {"dataset_items": items.erase_items()}
    datasets_restat(dataset_ids=dataset_ids)
    examples = TrainingExample.objects.filter(source_interaction_id__in=interaction_ids)
    example_ids = list(examples.values_list("pk", flat=True))
    counts["training_examples"] = examples.delete()[1].get("curation.TrainingExample", 0)
    gap_reprs, counts["knowledge_gaps_rebuilt"] = _gaps_forget(interaction_ids)
    counts["exports_deleted"], pending = exports_delete(dataset_ids=dataset_ids)
    removed = [(TrainingExample, example_ids), (DatasetItem, item_ids)]
    counts["admin_log_entries"] = admin_log_forget(objects=removed, texts=gap_reprs)
    counts["datasets_tainted"] = len(dataset_ids)
    if dataset_ids:
        for _receiver, answer in datasets_tainted.send(sender=Dataset, dataset_ids=dataset_ids, reason=reason, erasure_id=erasure_id):
            for name, value in (answer or {}).items():
                if name == "pending":
                    pending += value
                else:
                    counts[name] = counts.get(name, 0) + value
    if pending:
        counts["pending"] = pending
    return counts


def _lock_datasets_holding(interaction_ids: list[Any]) -> list[int]:
    """Lock every dataset holding one of these interactions, in key order, until no new one shows
    up: a retraining that copied items of a locked dataset into a new version (dataset_derive
    holds the source's lock) has committed before the copy is looked for again."""
    items = DatasetItem.objects.filter(source_interaction_id__in=interaction_ids)
    locked: set[int] = set()
    while True:
        found = set(items.order_by().values_list("dataset_id", flat=True).distinct())
        if found <= locked:
            return sorted(locked)
        new = sorted(found - locked)
        list(Dataset.objects.select_for_update().filter(pk__in=new).order_by("pk").values_list("pk", flat=True))
        locked.update(new)


def _gaps_forget(interaction_ids: list[Any]) -> tuple[list[str], int]:
    """Rebuild each gap that held one of these interactions from its other members (their
    representative and example queries re-read and scrubbed, as a run does); a gap left empty
    goes. Returns the gaps' former reprs (for the admin log) and how many changed."""
    ids = {str(i) for i in interaction_ids}
    reprs, changed = [], 0
    for gap in KnowledgeGap.objects.select_for_update().order_by("pk"):  # gaps are few (rebuilt per run)
        if not ids & set(gap.interaction_ids):
            continue
        reprs += [str(gap), *(e["text"] for e in gap.examples if e["id"] in ids)]
        changed += 1
        kept = [i for i in gap.interaction_ids if i not in ids]
        sample = _scrubbed_inputs(kept[:50])
        if not kept or not sample:
            gap.delete()
            continue
        gap.interaction_ids, gap.size = kept, len(kept)
        gap.representative = gaps.representative([text for _, text in sample])
        gap.examples = [{"id": i, "text": text} for i, text in sample[:GAP_EXAMPLES]]
        gap.save(update_fields=["interaction_ids", "size", "representative", "examples"])
    return reprs, changed


def _scrubbed_inputs(ids: list[str]) -> list[tuple[str, str]]:
    """(id, scrubbed query) of the interactions that still exist, in the given order."""
    texts = {str(pk): text for pk, text in Interaction.objects.filter(pk__in=ids).values_list("pk", "input_text")}
    return [(i, pii.scrub(texts[i])[0]) for i in ids if i in texts]
