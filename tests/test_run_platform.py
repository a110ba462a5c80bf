"""`run_platform` (what `make run` ends with) starts gunicorn and a real django-q2 cluster,
serves, runs queued tasks, and stops both on Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.db import connection
from django_q.models import Success
from django_q.tasks import async_task
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _healthz_count(port: int) -> float:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer live-metrics"})
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (a fixed http URL)
        text = response.read().decode()
    return sum(
        s.value for f in text_string_to_metric_families(text) for s in f.samples
        if s.name == "lp_http_requests_total" and s.labels["door"] == "healthz"
    )  # fmt: skip


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_run_platform_serves_runs_tasks_and_stops_both_on_ctrl_c(settings, tmp_path):
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": _database_url(), "DEBUG": "true", "Q_SYNC": "false", "Q_WORKERS": "1",
           "METRICS_TOKEN": "live-metrics", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_platform", "--bind", f"127.0.0.1:{port}", "--web-workers", "2", "--stop-timeout", "5"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert _wait_for(lambda: _healthy(port), 30), "the web server did not come up"
        settings.Q_CLUSTER = {**settings.Q_CLUSTER, "sync": False}
        task_id = async_task("interactions.tasks.purge_client_context", sync=False)
        assert _wait_for(lambda: Success.objects.filter(id=task_id).exists(), 30), "the cluster did not run the task"
        assert Success.objects.get(id=task_id).result == "purged 0 client contexts"
        # every scrape, whichever of the two workers answers it, counts the requests of both
        healthz = [_healthy(port) for _ in range(20)]
        assert all(healthz)
        assert all(_healthz_count(port) >= 20 for _ in range(6))
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert not _healthy(port)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
