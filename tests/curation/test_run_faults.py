"""A curation run never stays "running": a `manage.py curate` killed with SIGKILL mid-run is
re-queued by the reaper and then finishes; one whose database sessions are terminated fails
with the reason; a real django-q2 cluster on Redis loses a worker and the reaper repairs it.

The child blocks where it reads the interactions (another session holds that table locked), so
it is stopped mid-run at a known place, with no step boundary in sight."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest

from curation.models import CurationRun, TrainingExample
from tests.test_jobs import (
    backend_pid,
    child_env,
    heartbeats,
    manage,
    needs_postgres,
    reap_once_stale,
    table_locked,
    terminate_backends,
    worker_pid,
)
from tests.test_run_platform import _wait_for

pytestmark = [needs_postgres, pytest.mark.django_db(transaction=True)]
INTERACTIONS = "interactions_interaction"


def _curate() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        manage("curate", "--verbosity", "0"),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _running_run(process: subprocess.Popen[bytes]) -> CurationRun:
    assert _wait_for(lambda: CurationRun.objects.filter(status="running").exists(), 30), process.stderr
    return CurationRun.objects.get()


def test_a_curate_process_killed_mid_run_is_requeued_by_the_reaper_and_finishes(mix):
    with table_locked(INTERACTIONS):
        process = _curate()
        try:
            run = _running_run(process)
            assert heartbeats(CurationRun, run.pk, count=3), "the heart beats while the run waits"
            assert worker_pid(run) == process.pid
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
        finally:
            process.kill()
    run.refresh_from_db()
    assert run.status == "running", "a killed process leaves its run running..."
    assert reap_once_stale(stale_seconds=1) == "curation_run requeued: 1", "...until the reaper sees it"
    run.refresh_from_db()  # re-queued, dispatched and run again (Q_SYNC in the tests: in this process)
    assert run.status == "succeeded", run.error
    assert run.attempts == 2
    assert "re-queued by the reaper (attempt 2 of 3 next): No heartbeat for" in run.log_tail
    # (the feedback's lesson task already curated each interaction as it arrived: the run may create none)
    assert TrainingExample.objects.count() > 0
    assert run.progress == 100.0


def test_a_curate_process_whose_sessions_are_terminated_fails_with_the_reason(mix):
    with table_locked(INTERACTIONS) as session:
        process = _curate()
        try:
            run = _running_run(process)
            assert terminate_backends(session, keep=(backend_pid(),)) >= 1  # the child's sessions
        finally:
            _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"curation run {run.pk} failed" in stderr.decode()
    run.refresh_from_db()
    assert run.status == "failed", "recorded on a new session, never left running"
    assert "terminating connection due to administrator command" in run.error
    assert run.finished_at is not None


def _shell(code: str, env: dict[str, str]) -> str:
    command = manage("shell", "-c", code)
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_a_redis_cluster_that_loses_its_worker_mid_run_is_repaired_by_the_reaper(mix):
    """A real `qcluster` on the Redis broker, which has no delivery receipts: the task of a killed
    worker is gone for good, and only the reaper's re-queue finishes the run."""
    import redis

    url = "redis://127.0.0.1:6379/13"
    redis.Redis.from_url(url).flushdb()
    env = child_env(REDIS_URL=url, Q_SYNC="false", Q_WORKERS="1")
    cluster = subprocess.Popen(
        manage("qcluster"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        with table_locked(INTERACTIONS):
            start = "from curation.services import curation_run_start; print(curation_run_start().pk)"
            run_id = int(_shell(start, env))
            assert _wait_for(lambda: CurationRun.objects.filter(pk=run_id, status="running").exists(), 60)
            run = CurationRun.objects.get(pk=run_id)
            assert heartbeats(CurationRun, run.pk, count=2)
            worker = worker_pid(run)
            assert worker != cluster.pid, "the task runs in a worker process of the cluster"
            os.kill(worker, signal.SIGKILL)
        reap = "from learning_platform.jobs.tasks import reap_stale_jobs; print(reap_stale_jobs())"
        reports: list[str] = []
        assert _wait_for(lambda: reports.append(_shell(reap, env)) or reports[-1] != "no stale jobs", 30)
        assert reports[-1] == "curation_run requeued: 1"
        finished = CurationRun.objects.filter(pk=run_id, status="succeeded")
        assert _wait_for(finished.exists, 60), "the cluster ran it again"
        run.refresh_from_db()
        assert run.attempts == 2
        assert worker_pid(run) != worker
        assert TrainingExample.objects.count() > 0  # (made by this run or, as feedback arrived, by lessons)
    finally:
        os.killpg(cluster.pid, signal.SIGTERM)
        try:
            cluster.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(cluster.pid, signal.SIGKILL)
        redis.Redis.from_url(url).flushdb()
