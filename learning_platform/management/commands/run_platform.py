from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run the web server (gunicorn) and the task cluster (django-q2) together; Ctrl-C stops both."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1:8000")
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--web-threads", type=int, default=8, help="Threads per web worker: concurrent requests share the local model's batches"
        )
        parser.add_argument("--stop-timeout", type=float, default=10.0, help="Seconds to wait before killing a process")

    def handle(self, *args: Any, bind: str, web_workers: int, web_threads: int, stop_timeout: float, **options: Any) -> None:
        python = sys.executable
        commands = {
            "web": [python, "-m", "gunicorn", "learning_platform.wsgi", "--bind", bind, "--workers", str(web_workers),
                    "--worker-class", "gthread", "--threads", str(web_threads),
                    "--access-logfile", "-", "--timeout", "120",
                    # access and error lines with user ids taken out of paths (`/subjects/{user_id}`)
                    "--logger-class", "learning_platform.gunicorn_logger.RedactingLogger"],
            "tasks": [python, str(settings.BASE_DIR / "manage.py"), "qcluster"],
        }  # fmt: skip
        # every web worker and task worker may hold a model: they share the cores (SERVING_TORCH_THREADS)
        processes_per_host = str(web_workers + settings.Q_CLUSTER["workers"])
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": _metrics_dir(), "SERVING_PROCESSES_PER_HOST": processes_per_host}
        processes = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR, env=env, start_new_session=True) for name, cmd in commands.items()}
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        exited = None
        while not stopping and exited is None:
            exited = next((name for name, p in processes.items() if p.poll() is not None), None)
            time.sleep(0.5)
        self.stderr.write("stopping web server and task cluster…")
        for process in processes.values():
            _terminate(process, stop_timeout)
        if exited is not None and not stopping:
            raise CommandError(f"the {exited} process exited with code {processes[exited].returncode}; stopped the rest")


def _metrics_dir() -> str:
    """Where gunicorn's workers share their request counters for /metrics (emptied at each start,
    as prometheus-client requires); PROMETHEUS_MULTIPROC_DIR overrides it."""
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        return given
    path = settings.BASE_DIR / "var" / "prometheus"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return str(path)


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process group, then SIGKILL it after `timeout` (qcluster can hang on SIGTERM)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
