"""Facts that flow back up the loop from interactions."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the erasure transaction, before the subject's rows are deleted, with
# client, subject_id, subject_hash, interaction_ids and erasure_id (the ErasureRequest, written
# first). Receivers delete what they derived (examples, ...), mark what was built on it as
# tainted, and return {table: rows removed} (and "pending": [lines] for what a person must
# remove); these land in the ErasureRequest. An exception in a receiver aborts the erasure.
subject_erased = Signal()
