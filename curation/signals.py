"""Facts curation announces to later apps."""

from __future__ import annotations

from django.dispatch import Signal

# Sent when frozen datasets become tainted (an erased subject's data was in them), with
# dataset_ids and reason. The registry marks model versions trained on them.
datasets_tainted = Signal()
