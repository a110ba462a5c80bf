"""One runner for every kind of job: claim the row, beat its heart, record how it ended.

`job_run(model, pk, work)` claims a queued row (queued -> running, attempts + 1, atomically: a
second delivery of the same task finds it running and does nothing), starts a heartbeat thread
that writes `heartbeat_at` (and the progress and log lines the work staged) every
JOB_HEARTBEAT_SECONDS on a connection of its own, calls `work(context)`, and records the end:
succeeded, cancelled (`JobCancelled`, Ctrl-C) or failed with the reason and the traceback. A
failure is recorded after the broken connection is closed (on a new one) and then re-raised, so
the task queue sees it too. Every write survives a database blip: a connection that broke is
closed and the write retried on a new one, with backoff.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections, transaction
from django.db.models import QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import ERROR_CHARS, LOG_TAIL_CHARS, Job, JobStatus

logger = logging.getLogger(__name__)
T = TypeVar("T")
J = TypeVar("J", bound=Job)
RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)  # seconds between tries of one write: about 15 s in all
PROGRESS_SECONDS = 2.0  # progress and log lines reach the row at most this long after they were staged


class JobCancelled(Exception):
    """Raised by a work function that stopped because it was asked to: the job ends cancelled."""


def _broken() -> bool:
    """Whether this thread's connection is gone (as opposed to an error a retry cannot cure, such
    as SQLite's "database is locked")."""
    return connection.connection is None or not connection.is_usable()


def with_retry(operation: Callable[[], T], *, what: str) -> T:
    """Run a database operation on this thread's connection. When the connection broke (a
    restart, a failover, pg_terminate_backend), close it and run the operation again on a new
    one, after a growing pause. Inside a transaction nothing can be retried: the error goes up."""
    for delay in (*RETRY_DELAYS, None):
        try:
            return operation()
        except (OperationalError, InterfaceError):
            if delay is None or connection.in_atomic_block or not _broken():
                raise
            message = "%s: the database connection broke; reconnecting in %.1f s"
            logger.warning(message, what, delay, exc_info=True)
            connection.close()
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


class JobContext:
    """What a work function gets: the row (`job`) and the helpers that report through the heart."""

    def __init__(self, job: Job, attempt: int) -> None:
        self.job, self.attempt = job, attempt
        self.model = type(job)
        self.name = f"{self.model.kind()} {job.pk}"
        self._lock = threading.Lock()
        self._staged: dict[str, Any] = {}
        self._wake = threading.Event()
        self._stopping = False
        self._last_write = time.monotonic()

    def rows(self) -> QuerySet[Any]:
        """The row while this attempt owns it (a reaped or restarted job is no longer ours)."""
        return self.model.objects.filter(pk=self.job.pk, status=JobStatus.RUNNING, attempts=self.attempt)

    def stage(self, **fields: Any) -> None:
        """Fields of the row to write with the next heartbeat (and at the end, whatever happens)."""
        with self._lock:
            for name, value in fields.items():
                setattr(self.job, name, value)
                self._staged[name] = value
        if time.monotonic() - self._last_write >= min(PROGRESS_SECONDS, settings.JOB_HEARTBEAT_SECONDS):
            self._wake.set()

    def progress(self, percent: float) -> None:
        self.stage(progress=round(min(max(percent, 0.0), 100.0), 1))

    def log(self, message: str) -> None:
        logger.info("%s: %s", self.name, message)
        with self._lock:
            tail = (self.job.log_tail + f"{timezone.now():%Y-%m-%d %H:%M:%S} {message}\n")[-LOG_TAIL_CHARS:]
        self.stage(log_tail=tail)

    def flush(self) -> None:
        """Write what was staged now (from the heartbeat thread) instead of at the next beat."""
        self._wake.set()

    def cancel_requested(self) -> bool:
        """Whether someone asked this job to stop (one indexed look-up; survives a blip)."""
        rows = self.model.objects.filter(pk=self.job.pk, cancel_requested=True)
        return with_retry(rows.exists, what=f"{self.name}: cancel check")

    def take_staged(self) -> dict[str, Any]:
        with self._lock:
            staged, self._staged = self._staged, {}
        return staged

    def restage(self, fields: dict[str, Any]) -> None:
        with self._lock:
            self._staged = {**fields, **self._staged}

    def beat(self) -> None:
        """One heartbeat: heartbeat_at and whatever was staged, on this thread's connection."""
        fields = self.take_staged()
        self._last_write = time.monotonic()

        def write() -> None:
            with transaction.atomic():
                # skip_locked: a row the work itself holds locked (it runs inside a transaction
                # of its caller's) is written at the end, instead of blocking the heart
                if self.rows().select_for_update(skip_locked=True).values_list("pk", flat=True):
                    self.rows().update(**fields, heartbeat_at=timezone.now())
                else:
                    self.restage(fields)

        try:
            with_retry(write, what=f"{self.name}: heartbeat")
        except DatabaseError:
            logger.warning("%s: heartbeat failed; trying again at the next one", self.name, exc_info=True)
            self.restage(fields)
        finally:
            connection.close()  # a new one each beat: nothing to go stale, nothing a fork can inherit

    def heart(self) -> None:
        """The heartbeat thread's loop, until `stop`."""
        try:
            while not self._stopping:
                self._wake.wait(settings.JOB_HEARTBEAT_SECONDS)
                self._wake.clear()
                if not self._stopping:
                    self.beat()
        finally:
            connections.close_all()

    def stop(self, heart: threading.Thread) -> None:
        self._stopping = True
        self._wake.set()
        heart.join(timeout=RETRY_DELAYS[-1] * 2)


def _claim(model: type[Job], pk: Any) -> int | None:
    """queued -> running in one transaction; the attempt number, or None when it is not queued."""

    def claim() -> int | None:
        with transaction.atomic():
            row = model.objects.select_for_update().filter(pk=pk).values("status", "attempts").get()
            if row["status"] != JobStatus.QUEUED:
                return None
            now, attempt = timezone.now(), row["attempts"] + 1
            model.objects.filter(pk=pk).update(
                status=JobStatus.RUNNING,
                attempts=attempt,
                started_at=Coalesce("started_at", now),
                finished_at=None,
                heartbeat_at=now,
                error="",
            )
            return attempt

    return with_retry(claim, what=f"{model.kind()} {pk}: claim")


def _error_text(exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {exc}".strip()
    trace = traceback.format_exc()
    return f"{reason}\n\n{trace[-(ERROR_CHARS - len(reason)) :]}"


def _record(context: JobContext, status: str, *, error: str = "", note: str = "") -> None:
    """Write how the job ended. The connection the work used may be dead (that may be why it
    failed): it is closed first when unusable, and the write retried on a new one."""
    if note:
        context.log(note)
    now = timezone.now()
    fields = {**context.take_staged(), "status": status, "finished_at": now, "heartbeat_at": now}
    if error:
        fields["error"] = error
    if status == JobStatus.SUCCEEDED:
        fields.setdefault("progress", 100.0)
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()
    if not with_retry(lambda: context.rows().update(**fields), what=f"{context.name}: record {status}"):
        logger.warning(
            "%s ended %s, but the reaper or another worker had taken it over: not recorded",
            context.name,
            status,
        )


def job_run(model: type[J], pk: Any, work: Callable[[JobContext], None]) -> J:
    """Run one job of `model` with `work`; return the row as it ended (or as it was found, when
    it was not queued). A failure is recorded, then re-raised."""
    attempt = _claim(model, pk)
    if attempt is None:
        found = model.objects.get(pk=pk)
        logger.info("%s %s is %s, not queued: left alone", model.kind(), pk, found.status)
        return found
    context = JobContext(model.objects.get(pk=pk), attempt)
    context.log(f"attempt {attempt} started (pid {os.getpid()} on {socket.gethostname()})")
    heart = threading.Thread(target=context.heart, name=f"heartbeat {context.name}", daemon=True)
    heart.start()
    try:
        work(context)
    except JobCancelled as exc:
        context.stop(heart)
        _record(context, JobStatus.CANCELLED, note=f"cancelled: {exc}")
    except (KeyboardInterrupt, SystemExit):
        context.stop(heart)
        _record(context, JobStatus.CANCELLED, note="interrupted")
        raise
    except BaseException as exc:
        context.stop(heart)
        logger.exception("%s failed", context.name)
        try:
            _record(
                context,
                JobStatus.FAILED,
                error=_error_text(exc),
                note=f"failed: {type(exc).__name__}: {exc}",
            )
        except DatabaseError:
            logger.exception("%s: its failure could not be recorded; the reaper will mark it", context.name)
        raise
    else:
        context.stop(heart)
        _record(context, JobStatus.SUCCEEDED, note="succeeded")
    return with_retry(lambda: model.objects.get(pk=pk), what=f"{context.name}: reload")
