"""Start a training job's processes through torchrun and supervise them from the worker, the
command or whoever runs the job; this module never imports the ML stack.

`Launch(job, attempt, payload).run(on_event)` writes the payload (recipe, rows, paths) to a file
only the job's processes read, starts `python -m torch.distributed.run --standalone
--nproc_per_node TRAINING_PROCESSES -m training.child FILE` in a session of its own, hands every
event rank 0 reports (training/child.py) to `on_event` on the calling thread, and returns how the
processes ended. `stop()` forwards SIGINT to the launcher, which forwards it to every rank: they
stop at the same step and leave a checkpoint. When anything goes wrong here, the processes are
killed before the error goes up; when this process is killed, they die with it (child.py).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from .child import EVENT_PREFIX, STOPPED_EXIT

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL_LINES = 40
Event = dict[str, Any]


@dataclass
class Ending:
    """How the training processes ended: `end` is succeeded, stopped or failed."""

    end: str
    fields: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    returncode: int = 0


def command(spec: Path, processes: int) -> list[str]:
    options = shlex.split(settings.TRAINING_LAUNCHER_ARGS)
    return [
        sys.executable, "-m", "torch.distributed.run", *options, f"--nproc_per_node={processes}", "--max_restarts=0",
        "-m", "training.child", str(spec),
    ]  # fmt: skip


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-LOG_TAIL_LINES:])


class Launch:
    def __init__(self, *, output_dir: Path, attempt: int, payload: dict[str, Any]) -> None:
        self.directory = output_dir / "launch"
        self.spec = self.directory / f"attempt-{attempt}.json"
        self.log = self.directory / f"attempt-{attempt}.log"
        self.payload = payload
        self.process: subprocess.Popen[str] | None = None
        self.stop_reason = ""

    def _write_spec(self) -> None:
        """The payload holds training text: readable by this user only, gone after the attempt."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for old in self.directory.glob("attempt-*.json"):
            old.unlink()
        descriptor = os.open(self.spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump({**self.payload, "supervisor_pid": os.getpid()}, out)

    def stop(self, reason: str) -> None:
        """Ask every rank to stop at its next step (SIGINT through the launcher)."""
        self.stop_reason = self.stop_reason or reason
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)  # the ranks follow (PR_SET_PDEATHSIG)
            self.process.wait()

    def run(self, on_event: Callable[[Event], None]) -> Ending:
        self._write_spec()
        processes = settings.TRAINING_PROCESSES
        args = command(self.spec, processes)
        logger.info("starting %s", shlex.join(args))
        ending: Ending | None = None
        try:
            with self.log.open("w") as log:
                self.process = subprocess.Popen(
                    args, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
                )
            assert self.process.stdout is not None
            for line in self.process.stdout:
                if not line.startswith(EVENT_PREFIX):
                    continue
                event = json.loads(line[len(EVENT_PREFIX) :])
                if "end" in event:
                    ending = Ending(event["end"], event.get("fields", {}), event.get("error", ""))
                else:
                    on_event(event)
            returncode = self.process.wait()
        finally:
            self._kill()
            self.spec.unlink(missing_ok=True)
        return self._ending(ending, returncode)

    def _ending(self, ending: Ending | None, returncode: int) -> Ending:
        if ending is not None:
            ending.returncode = returncode
            return ending
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
        if returncode == STOPPED_EXIT:
            how += " (stopped)"
        error = f"The training processes ended ({how}) without saying how; the last lines of {self.log}:\n{_tail(self.log)}"
        return Ending("failed", error=error, returncode=returncode)
