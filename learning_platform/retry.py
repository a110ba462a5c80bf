"""Retry a transaction that lost a race the database settled by aborting it.

PostgreSQL aborts one side of a deadlock (40P01) and, under REPEATABLE READ or SERIALIZABLE,
a transaction that read rows another one changed (40001). Running the whole transaction again
is then correct: it starts over on fresh rows. Anything else is re-raised at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.db import DatabaseError

logger = logging.getLogger(__name__)
T = TypeVar("T")

RETRYABLE = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
FOREIGN_KEY_VIOLATION = "23503"


def sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of a database error (psycopg's, under Django's wrapper), if any."""
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def is_retryable(exc: BaseException, *, also: frozenset[str] = frozenset()) -> bool:
    return isinstance(exc, DatabaseError) and sqlstate(exc) in RETRYABLE | also


def retry_transaction(work: Callable[[], T], *, attempts: int = 4, also: frozenset[str] = frozenset()) -> T:
    """Run `work` again when the database aborted it for a deadlock or a serialization failure
    (or one of the SQLSTATEs in `also`). `work` opens its own transaction (a savepoint inside
    a caller's), so a failed attempt leaves nothing behind."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DatabaseError as exc:
            if attempt == attempts or not is_retryable(exc, also=also):
                raise
            logger.info("retrying after %s (attempt %d of %d)", sqlstate(exc), attempt, attempts)
    raise AssertionError("unreachable")
