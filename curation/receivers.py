"""What curation does when interactions erases a subject: forget what was derived from them."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver
from django.utils import timezone

from interactions.signals import subject_erased

from .models import Dataset, DatasetItem, KnowledgeGap, TrainingExample
from .signals import datasets_tainted


@receiver(subject_erased, dispatch_uid="curation.erase_derived")
def erase_derived(sender: Any, subject_hash: str, interaction_ids: list[Any], **kwargs: Any) -> dict[str, int]:
    """Delete the subject's examples and dataset items; taint the datasets that held them."""
    if not interaction_ids:
        return {}
    ids = {str(i) for i in interaction_ids}
    items = DatasetItem.objects.filter(source_interaction_id__in=interaction_ids)
    dataset_ids = sorted(set(items.values_list("dataset_id", flat=True)))
    reason = (
        f"Held data of a subject erased on {timezone.now():%Y-%m-%d %H:%M} UTC (subject {subject_hash[:12]}…); those items were removed."
    )
    for dataset in Dataset.objects.filter(pk__in=dataset_ids):
        dataset.tainted = True
        dataset.tainted_reason = (dataset.tainted_reason + "\n" + reason).strip()
        dataset.save(update_fields=["tainted", "tainted_reason"])
    removed_items = items.erase_items()
    removed_examples = (
        TrainingExample.objects.filter(source_interaction_id__in=interaction_ids).delete()[1].get("curation.TrainingExample", 0)
    )
    for gap in KnowledgeGap.objects.all().iterator():  # gaps are few (rebuilt per run)
        if ids & set(gap.interaction_ids):
            gap.interaction_ids = [i for i in gap.interaction_ids if i not in ids]
            gap.examples = [e for e in gap.examples if e["id"] not in ids]
            gap.size = len(gap.interaction_ids)
            if gap.size:
                gap.save(update_fields=["interaction_ids", "examples", "size"])
            else:
                gap.delete()
    if dataset_ids:
        datasets_tainted.send(sender=Dataset, dataset_ids=dataset_ids, reason=reason)
    return {"training_examples": removed_examples, "dataset_items": removed_items, "datasets_tainted": len(dataset_ids)}
