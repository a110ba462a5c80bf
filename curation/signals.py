"""Facts curation announces to later apps."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the erasure's transaction when frozen datasets become tainted (an erased subject's
# data was in them), with dataset_ids, reason and erasure_id (the ErasureRequest). The registry
# marks model versions trained on them and acts on the task's policy; receivers return counts
# ({name: number}, and "pending": [lines]) that land in the erasure record.
datasets_tainted = Signal()
