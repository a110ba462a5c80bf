"""The one job shape (learning_platform.jobs): claim, heartbeat, failure, cancel, database
blips and the reaper, on every kind of job. The per-kind fault tests (real processes killed,
connections terminated) live beside each kind: tests/curation/test_run_faults.py,
tests/abtesting/test_evaluation.py, tests/training/test_kill_resume.py."""

from __future__ import annotations

import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections
from django.test import override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from abtesting.models import EvalRun
from abtesting.services import suite_default
from curation.models import CurationRun
from learning_platform.jobs import JobCancelled, job_models, job_run
from learning_platform.schedules import SCHEDULES
from registry.services import version_base
from tests.test_run_platform import ROOT, _database_url, _wait_for
from training.models import TrainingJob

needs_postgres = pytest.mark.skipif(connection.vendor != "postgresql", reason="needs pg_terminate_backend")


def reap_as_scheduled(*, stale_seconds: float) -> str:
    """Run the reaper the way django-q2 runs the `reap-stale-jobs` schedule."""
    spec = next(s for s in SCHEDULES if s.name == "reap-stale-jobs")
    with override_settings(JOB_STALE_SECONDS=stale_seconds):
        return import_string(spec.func)()  # type: ignore[no-any-return]


def reap_once_stale(*, stale_seconds: float, timeout: float = 20) -> str:
    """Call the scheduled reaper until it finds something (the dead job's last heartbeat must
    first grow older than `stale_seconds`); its report."""
    reports: list[str] = []

    def found() -> bool:
        reports.append(reap_as_scheduled(stale_seconds=stale_seconds))
        return reports[-1] != "no stale jobs"

    _wait_for(found, timeout)
    return reports[-1]


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a platform process started by a test: this test's database, fast hearts."""
    platform = {"DATABASE_URL": _database_url(), "DEBUG": "true", "HF_HUB_OFFLINE": "1"}
    fast = {"JOB_HEARTBEAT_SECONDS": "0.2", "JOB_STALE_SECONDS": "1", "CURATION_WORKERS": "1"}
    return {**os.environ, **platform, **fast, **extra}


def manage(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]


def worker_pid(job: Any) -> int:
    """The process that runs the job's current attempt (the runner writes it into the log)."""
    job.refresh_from_db()
    return int(re.findall(r"pid (\d+)", job.log_tail)[-1])


@contextmanager
def side_session() -> Iterator[Any]:
    """A second database session, as an operator's psql would be (autocommit)."""
    import psycopg

    with psycopg.connect(_database_url(), autocommit=True) as session:
        yield session


@contextmanager
def table_locked(table: str) -> Iterator[Any]:
    """Another session holds `table` in ACCESS EXCLUSIVE mode: whoever reads it waits."""
    with side_session() as session:
        session.execute("BEGIN")
        session.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        try:
            yield session
        finally:
            session.execute("ROLLBACK")


def terminate_backends(session: Any, *, keep: tuple[int, ...] = ()) -> int:
    """pg_terminate_backend on every session of this database but `session` and `keep`."""
    rows = session.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
        [list(keep)],
    ).fetchall()
    return len(rows)


def backend_pid() -> int:
    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def heartbeats(model: type[Any], pk: Any, count: int, timeout: float = 20) -> bool:
    """Wait until the row showed `count` different heartbeats (read from a side session)."""
    seen: set[Any] = set()
    table = model._meta.db_table
    with side_session() as session:

        def beat() -> bool:
            query = f"SELECT heartbeat_at FROM {table} WHERE id = %s"  # noqa: S608  (a table name of ours)
            seen.add(session.execute(query, [pk]).fetchone()[0])
            return len(seen - {None}) >= count

        return _wait_for(beat, timeout)


def test_every_kind_of_job_is_listed():
    kinds = {"curation_run", "training_job", "eval_run", "import_run", "retraining"}
    assert {model.kind() for model in job_models()} == kinds


def test_setup_schedules_declares_one_reaper_and_deletes_the_old_one(db):
    from django_q.models import Schedule

    old = {"func": "training.tasks.reap_stale_jobs", "schedule_type": "I", "minutes": 5}
    Schedule.objects.create(name="reap-stale-training-jobs", **old)
    out = io.StringIO()
    call_command("setup_schedules", stdout=out)
    assert "deleted retired schedule reap-stale-training-jobs" in out.getvalue()
    assert not Schedule.objects.filter(name="reap-stale-training-jobs").exists()
    reaper = Schedule.objects.get(name="reap-stale-jobs")
    assert (reaper.func, reaper.schedule_type, reaper.minutes) == (
        "learning_platform.jobs.tasks.reap_stale_jobs",
        "I",
        1,
    )
    call_command("setup_schedules", stdout=out)
    assert Schedule.objects.filter(name="reap-stale-jobs").count() == 1


def test_a_second_delivery_does_no_harm(db):
    run = CurationRun.objects.create()
    calls = []

    def work(context):
        calls.append(context.attempt)
        assert job_run(CurationRun, run.pk, work).status == "running", "a delivery while it runs: no harm"

    assert job_run(CurationRun, run.pk, work).status == "succeeded"
    assert job_run(CurationRun, run.pk, work).status == "succeeded", "a delivery after it ended: no harm"
    assert calls == [1]
    run.refresh_from_db()
    assert (run.attempts, run.progress) == (1, 100.0)
    assert run.started_at <= run.heartbeat_at == run.finished_at
    assert "attempt 1 started (pid" in run.log_tail
    assert "succeeded" in run.log_tail


def test_a_failure_is_recorded_with_its_reason_and_traceback_then_re_raised(db):
    run = CurationRun.objects.create()

    def work(context):
        context.progress(40)
        context.log("halfway")
        raise ValueError("the data is odd")

    with pytest.raises(ValueError, match="the data is odd"):
        job_run(CurationRun, run.pk, work)
    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("ValueError: the data is odd\n\nTraceback (most recent call last):")
    assert 'raise ValueError("the data is odd")' in run.error
    assert "halfway" in run.log_tail
    assert "failed: ValueError: the data is odd" in run.log_tail
    assert run.progress == 40
    assert run.finished_at is not None


def test_a_cancel_ends_cancelled_and_ctrl_c_too_but_goes_on_up(db):
    run, other = CurationRun.objects.create(), CurationRun.objects.create()

    def cancel(context):
        CurationRun.objects.filter(pk=context.job.pk).update(cancel_requested=True)
        if context.cancel_requested():
            raise JobCancelled("asked to stop")

    assert job_run(CurationRun, run.pk, cancel).status == "cancelled"
    assert "cancelled: asked to stop" in CurationRun.objects.get(pk=run.pk).log_tail

    def interrupted(context):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        job_run(CurationRun, other.pk, interrupted)
    assert CurationRun.objects.get(pk=other.pk).status == "cancelled"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has one writer: the blocked work holds it")
@pytest.mark.django_db(transaction=True)
def test_the_heart_beats_from_its_own_thread_while_the_work_blocks(settings):
    settings.JOB_HEARTBEAT_SECONDS = 0.05
    run = CurationRun.objects.create()
    release = threading.Event()
    outcome: list[Any] = []

    def work(context):
        context.progress(30)
        release.wait(30)  # one long call: no step boundary, no write from the work

    def run_it() -> None:
        try:
            outcome.append(job_run(CurationRun, run.pk, work))
        finally:
            connections.close_all()

    worker = threading.Thread(target=run_it)
    worker.start()
    try:
        assert heartbeats(CurationRun, run.pk, count=4), "the heartbeat stopped while the work blocked"
        assert CurationRun.objects.get(pk=run.pk).progress == 30, "staged progress went out with a beat"
    finally:
        release.set()
        worker.join(30)
    assert outcome[0].status == "succeeded"


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_failure_on_a_terminated_connection_is_recorded_on_a_new_one():
    run = CurationRun.objects.create()

    def work(context):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # the work's own session dies

    with pytest.raises(OperationalError):
        job_run(CurationRun, run.pk, work)
    run.refresh_from_db()
    assert run.status == "failed"
    assert "terminating connection due to administrator command" in run.error


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_blip_under_the_work_is_survived():
    run = CurationRun.objects.create()

    def work(context):
        with side_session() as session:
            assert terminate_backends(session) >= 1  # every session of the app, this thread's included
        assert not context.cancel_requested(), "the read after the blip reconnects"
        context.log("still here")

    assert job_run(CurationRun, run.pk, work).status == "succeeded"
    assert "still here" in CurationRun.objects.get(pk=run.pk).log_tail


def test_the_reaper_requeues_what_can_start_over_and_fails_the_rest(db, django_capture_on_commit_callbacks):
    old = timezone.now() - timedelta(minutes=10)
    dead = CurationRun.objects.create(status="running", attempts=1, heartbeat_at=old)
    spent = CurationRun.objects.create(status="running", attempts=3, heartbeat_at=old)
    live = CurationRun.objects.create(status="running", attempts=1, heartbeat_at=timezone.now())
    version = version_base(task="support", base_model="tiny")
    suite = suite_default(task="support")
    evaluation = EvalRun.objects.create(version=version, suite=suite, status="running", heartbeat_at=old)
    with django_capture_on_commit_callbacks() as dispatched:
        report = reap_as_scheduled(stale_seconds=120)
    assert report == "curation_run failed: 1, curation_run requeued: 1, eval_run failed: 1"
    assert len(dispatched) == 1, "the re-queued run is sent to the task queue again"
    dead.refresh_from_db()
    assert dead.status == "queued"
    assert dead.error.startswith("No heartbeat for 600 s (JOB_STALE_SECONDS=120): the process running")
    assert "re-queued by the reaper (attempt 2 of 3 next)" in dead.log_tail
    assert CurationRun.objects.get(pk=spent.pk).status == "failed"
    assert CurationRun.objects.get(pk=live.pk).status == "running"
    evaluation.refresh_from_db()
    assert (evaluation.status, evaluation.finished_at is not None) == ("failed", True)
    assert "No heartbeat" in evaluation.error
    assert reap_as_scheduled(stale_seconds=120) == "no stale jobs"
    assert not TrainingJob.objects.exists()
