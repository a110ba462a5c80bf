"""Training backends behind one interface: `trl` (transformers + peft + TRL, CPU or GPU, QLoRA
through bitsandbytes) and `unsloth` (CUDA only). Heavy imports happen inside the backends."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..recipes import Recipe


class BackendError(RuntimeError):
    """The job cannot run on this backend or this machine (a clear, final failure)."""


@dataclass
class Hooks:
    """What a backend reports while it trains; `should_stop` is polled after every step."""

    on_log: Callable[[dict[str, Any]], None] = lambda record: None
    on_step: Callable[[int, int], None] = lambda step, total: None
    should_stop: Callable[[], bool] = lambda: False


@dataclass
class TrainSpec:
    method: str
    base_model: str
    recipe: Recipe
    train_rows: list[dict[str, Any]]
    eval_rows: list[dict[str, Any]]
    output_dir: Path
    resume_from: Path | None = None
    parent_adapter: Path | None = None
    hooks: Hooks = field(default_factory=Hooks)


@dataclass
class TrainResult:
    adapter_dir: Path
    metrics: dict[str, float]
    stopped_early: bool
    last_checkpoint: Path | None


class Backend(Protocol):
    name: str
    reason: str

    def train(self, spec: TrainSpec) -> TrainResult: ...


def last_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete checkpoint. transformers writes trainer_state.json last, so a process
    killed while saving leaves a directory without it, which is skipped (resuming from it fails)."""
    checkpoints = sorted((output_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    complete = [c for c in checkpoints if (c / "trainer_state.json").is_file()]
    return complete[-1] if complete else None


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def select(
    name: str,
    *,
    load_in_4bit: bool,
    base_model: str | None = None,
    max_length: int = 512,
    on: Any = None,
    padding_free: bool = False,
) -> Backend:
    """`auto` picks trl, and unsloth only on a CUDA GPU where trl would not fit (backends/device.py);
    the backend's `reason` says why, for the job's recipe notes. `on` is the `device.Device` to
    decide for (default: this process's, probed)."""
    from .trl_backend import TrlBackend

    if name not in ("auto", "trl", "unsloth"):
        raise BackendError(f"Unknown backend {name!r}: use auto, trl or unsloth.")
    has_cuda = on.cuda if on is not None else cuda_available()
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if name == "unsloth" and not has_cuda:
        raise BackendError("The unsloth backend needs a CUDA GPU, and this machine has none; use backend=trl.")
    if name == "unsloth" and not has_unsloth:
        raise BackendError("The unsloth backend needs the unsloth package (pip install -r requirements/gpu.txt).")
    if load_in_4bit and importlib.util.find_spec("bitsandbytes") is None:
        where = "" if has_cuda else " (this machine has no CUDA GPU either)"
        raise BackendError(
            f"load_in_4bit (QLoRA) needs bitsandbytes, which is not installed{where}: "
            "pip install -r requirements/gpu.txt, or set load_in_4bit to false."
        )
    if padding_free and not (has_cuda and importlib.util.find_spec("flash_attn") is not None):
        raise BackendError("padding_free needs a CUDA GPU and the flash-attn package (rows are packed without a mask).")
    chosen, reason = name, f"{name}: asked for"
    if name == "auto" and not has_cuda:
        chosen, reason = "trl", "trl: no CUDA GPU here (unsloth needs one)"
    elif name == "auto" and base_model:
        from . import device

        parameters = device.count_parameters(base_model)
        found = on if on is not None else device.probe()
        chosen, reason = device.choose_backend("auto", parameters, found, max_length=max_length, load_in_4bit=load_in_4bit)
    elif name == "auto":
        chosen, reason = "trl", "trl: the faster backend on a GPU with room"
    backend: Backend
    if chosen == "unsloth":
        from .unsloth_backend import UnslothBackend

        backend = UnslothBackend()
    else:
        backend = TrlBackend()
    backend.reason = reason
    return backend
