"""django-q2 entry points of the interactions app."""

from __future__ import annotations

import logging

from .services import client_context_purge

logger = logging.getLogger(__name__)


def purge_client_context() -> str:
    removed = client_context_purge()
    logger.info("purged %d client contexts past retention", removed)
    return f"purged {removed} client contexts"
