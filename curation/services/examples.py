from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..models import TrainingExample
from .config import config_for


@transaction.atomic
def example_review(*, examples: QuerySet[TrainingExample], approve: bool, reviewer: Any) -> int:
    """Approve (the example becomes gold) or reject (it leaves every future dataset) in bulk."""
    count = 0
    for example in examples.select_for_update():
        config, _ = config_for(example.task)
        example.review_status = TrainingExample.Review.APPROVED if approve else TrainingExample.Review.REJECTED
        example.reviewed_by, example.reviewed_at = reviewer, timezone.now()
        if approve:
            example.tier, example.quality_score = "gold", max(example.quality_score, config.tiers["gold"])
        else:
            example.tier = "reject"
        example.signals = {**example.signals, "review": example.review_status}
        example.save(update_fields=["review_status", "reviewed_by", "reviewed_at", "tier", "quality_score", "signals", "updated_at"])
        count += 1
    return count
