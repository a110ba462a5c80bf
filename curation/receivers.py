"""What curation does when interactions erases a subject: forget what was derived from them."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from interactions.signals import subject_erased

from .services.erasure import derived_erase


@receiver(subject_erased, dispatch_uid="curation.erase_derived")
def erase_derived(
    sender: Any, subject_hash: str, interaction_ids: list[Any], erasure_id: int | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Examples, dataset items (datasets tainted, stats recomputed), gaps, exports, admin history."""
    return derived_erase(subject_hash=subject_hash, interaction_ids=interaction_ids, erasure_id=erasure_id)


from .lessons import receivers as lessons_receivers  # noqa: E402, F401  (connects lessons and memory)
