"""The training process: `python -m torch.distributed.run ... -m training.child SPEC` (one per
rank), started and supervised by training/launch.py.

It reads everything it needs from SPEC (a JSON file the supervisor wrote: the recipe, the rows,
the paths), decides what depends on its device (backend, batch), trains, and reports to the
supervisor as JSON lines on its standard output, from rank 0 only: the supervisor writes the job
row; this process never touches the database. It stops at the next step, leaving a checkpoint, on
SIGINT (the supervisor forwards a cancel request or Ctrl-C that way), the same step on every
rank. It dies with its supervisor: SIGKILL when the launcher dies (PR_SET_PDEATHSIG), and a
watcher that ends it when the supervising process is gone.

This is the only place a backend (torch, transformers, peft, trl, unsloth) is imported.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
import traceback
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

EVENT_PREFIX = "@lp-training "
STOPPED_EXIT = 3  # the exit status of a process that stopped on request, leaving a checkpoint
WATCH_SECONDS = 1.0
ERROR_CHARS = 20_000
_stop = threading.Event()


def _on_sigint(signum: int, frame: Any) -> None:
    _stop.set()


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed and not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _die_with(supervisor: int) -> None:
    """SIGKILL this process when its launcher dies (Linux), and when the supervisor is gone."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)

    def watch() -> None:
        while _alive(supervisor) and os.getppid() != 1:
            time.sleep(WATCH_SECONDS)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="supervisor watch", daemon=True).start()


class Channel:
    """Events to the supervisor, one JSON line each, from rank 0 (the others stay quiet)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream

    def send(self, **event: Any) -> None:
        if self.stream is None:
            return
        try:
            self.stream.write(EVENT_PREFIX + json.dumps(event, default=str) + "\n")
            self.stream.flush()
        except BrokenPipeError:  # the supervisor is gone: so is the job
            os.kill(os.getpid(), signal.SIGKILL)


def _channel(rank: int) -> Channel:
    """Keep the standard output for events; whatever the libraries print goes to the log."""
    events = os.fdopen(os.dup(1), "w", buffering=1) if rank == 0 else None
    os.dup2(2, 1)
    return Channel(events)


def _agreed_device(world: int) -> Any:
    """This rank's device, with the least free memory of all ranks: every rank then derives the
    same backend and batch (different batches per rank would hang the gradient exchange)."""
    from .backends import device

    found = device.probe()
    if world == 1:
        return found
    import torch
    import torch.distributed as dist

    if found.cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        found = device.probe()
    if not dist.is_initialized():  # transformers (accelerate) uses this group as it finds it
        dist.init_process_group("nccl" if found.cuda else "gloo")
    free = torch.tensor([found.free_bytes], dtype=torch.int64, device="cuda" if found.cuda else "cpu")
    dist.all_reduce(free, op=dist.ReduceOp.MIN)
    return replace(found, free_bytes=int(free.item()))


def _recipe(values: dict[str, Any]) -> Any:
    from .recipes import Recipe

    modules = values.get("target_modules")
    return Recipe(**{**values, "target_modules": tuple(modules) if modules else None})


def train(spec: dict[str, Any], channel: Channel, world: int) -> str:
    """Train as SPEC says; returns "succeeded" or "stopped"."""
    from .backends import BackendError, Hooks, TrainSpec, device, select

    recipe = _recipe(spec["recipe"])
    on = _agreed_device(world)
    backend = select(
        spec["backend"], load_in_4bit=recipe.load_in_4bit, base_model=spec["base_model"], max_length=recipe.max_length, on=on,
        padding_free=recipe.padding_free,
    )  # fmt: skip
    if recipe.padding_free and spec["method"] != "sft":
        raise BackendError("padding_free is for SFT jobs only.")
    parameters = device.count_parameters(spec["base_model"])
    recipe, notes = device.finalize(recipe, parameters, on, rows=len(spec["train_rows"]), processes=world)
    notes = {**spec["recipe_notes"], **notes, "backend": backend.reason}
    channel.send(stage={"recipe": recipe.as_dict(), "recipe_notes": notes})
    where = f"{on.name} ({device.weight_dtype(on)} weights)"
    rows = f"{recipe.batch_size} x {recipe.gradient_accumulation} rows a step"
    channel.send(log=f"training on {world} process(es), {where}; {backend.reason}; {rows}")
    hooks = Hooks(
        on_log=lambda record: channel.send(record=record),
        on_step=lambda step, total: channel.send(step=step, total=total),
        should_stop=_stop.is_set,
    )
    result = backend.train(
        TrainSpec(
            method=spec["method"], base_model=spec["base_model"], recipe=recipe, train_rows=spec["train_rows"],
            eval_rows=spec["eval_rows"], output_dir=Path(spec["output_dir"]), hooks=hooks,
            resume_from=Path(spec["resume_from"]) if spec["resume_from"] else None,
            parent_adapter=Path(spec["parent_adapter"]) if spec["parent_adapter"] else None,
        )
    )  # fmt: skip
    checkpoint = str(result.last_checkpoint or "")
    if result.stopped_early:
        channel.send(end="stopped", fields={"checkpoint": checkpoint})
        return "stopped"
    if channel.stream is not None:
        meta = {**spec["meta"], "recipe": recipe.as_dict(), "metrics": result.metrics}
        (result.adapter_dir / "training_meta.json").write_text(json.dumps(meta, indent=2))
    fields = {
        "adapter_path": str(result.adapter_dir), "metrics": result.metrics, "eval_loss": result.metrics.get("eval_loss"),
        "checkpoint": checkpoint,
    }  # fmt: skip
    channel.send(end="succeeded", fields=fields)
    return "succeeded"


def _error(exc: BaseException) -> str:
    reason = f"{type(exc).__name__}: {exc}".strip()
    return f"{reason}\n\n{traceback.format_exc()[-(ERROR_CHARS - len(reason)) :]}"


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, _on_sigint)  # first: a stop asked during start-up is kept
    spec = json.loads(Path(argv[0]).read_text())
    _die_with(int(spec["supervisor_pid"]))
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    channel = _channel(rank)
    try:
        outcome = train(spec, channel, world)
    except Exception as exc:
        from .backends import last_checkpoint

        checkpoint = last_checkpoint(Path(spec["output_dir"]))
        channel.send(end="failed", error=_error(exc), fields={"checkpoint": str(checkpoint or "")})
        traceback.print_exc()
        return 1
    return 0 if outcome == "succeeded" else STOPPED_EXIT


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
