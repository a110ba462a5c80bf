from __future__ import annotations

from ..models import CurationConfig
from ..pipeline import Config
from ..scoring import DEFAULT_TIERS, DEFAULT_WEIGHTS


def config_for(task: str) -> tuple[Config, CurationConfig]:
    """The pipeline's view of a task's configuration (the defaults when it has none)."""
    row = CurationConfig.objects.filter(task=task).first() or CurationConfig(task=task)
    weights = {**DEFAULT_WEIGHTS, **(row.weights or {})}
    tiers = {**DEFAULT_TIERS, **row.tiers()}
    return Config(min_score=row.min_score, tiers=tiers, weights=weights, requires_reasoning=row.requires_reasoning), row
