"""Facts that flow back up the loop from interactions."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the erasure transaction, before the subject's rows are deleted, with
# client, subject_id, subject_hash and interaction_ids. Receivers delete what they derived
# (examples, ...), mark what was built on it as tainted, and return {table: rows removed};
# the counts land in the ErasureRequest. An exception in a receiver aborts the erasure.
subject_erased = Signal()
