from __future__ import annotations

from learning_platform.errors import DomainError


class CurationError(DomainError):
    """A curation request refused; nothing was changed."""
