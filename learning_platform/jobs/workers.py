"""A job's independent pieces in forked worker processes (curation chunks, import spans)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from django.db import connection, connections

J = TypeVar("J")
R = TypeVar("R")


def can_fork() -> bool:
    """Whether work may go to forked workers here: not inside a transaction (the workers would not
    see its rows, and closing this process's connections would end it) and not from a daemonic
    process (multiprocessing refuses)."""
    return not connection.in_atomic_block and not multiprocessing.current_process().daemon


def in_workers(function: Callable[[J], R], jobs: Iterable[J], workers: int) -> Iterator[R]:
    """`function(job)` for each job in `workers` forked processes; results as they come. Each
    worker opens its own database connection (this process's are closed first, so none is shared).
    Closing the iterator early (an error, a cancel) terminates the workers."""
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(workers, initializer=connections.close_all) as pool:
        yield from pool.imap_unordered(function, jobs)
