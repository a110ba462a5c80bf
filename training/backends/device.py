"""What the training device allows: weight precision, which backend, how many rows a step.

Runs inside the training process (never in the worker or web process: it imports torch). The
memory model is fitted to what ML_NOTES measured on one H100 for LoRA r=16 on a random-initialised
0.97B Llama at 512 tokens: trl with bf16 weights peaked at 10.2 GiB with 8 rows a step and
50.9 GiB with 48, i.e. about 1 GiB per row on top of the weights, roughly proportional to
parameters x sequence length; unsloth needed 6-17x less but ran at 0.44-0.66x trl's speed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, replace
from typing import Any

from ..recipes import Recipe

GIB = 1024**3
# Activation memory of one row of a LoRA step, per parameter per token (bytes), fitted above.
ROW_BYTES_PER_PARAM_TOKEN = 0.0021
BYTES_PER_PARAM = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "nf4": 0.56}
MAX_AUTO_BATCH = 64
HEADROOM = 0.85  # of the free memory: the allocator's fragmentation and the optimizer's state
MIN_STEPS_PER_EPOCH = 8  # an automatic batch never leaves an epoch fewer optimizer steps than this


@dataclass(frozen=True)
class Device:
    kind: str  # "cuda" or "cpu"
    name: str
    free_bytes: int
    total_bytes: int
    bf16: bool

    @property
    def cuda(self) -> bool:
        return self.kind == "cuda"


def probe() -> Device:
    import torch

    if not torch.cuda.is_available():
        return Device("cpu", "cpu", 0, 0, bf16=False)
    free, total = torch.cuda.mem_get_info()
    return Device("cuda", torch.cuda.get_device_name(), int(free), int(total), bf16=bool(torch.cuda.is_bf16_supported()))


def weight_dtype(device: Device) -> str:
    """bf16 on a GPU that has it, fp16 on an older one, fp32 on the CPU (no bf16 units here)."""
    if not device.cuda:
        return "fp32"
    return "bf16" if device.bf16 else "fp16"


def torch_dtype(name: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]


def memory_needed(parameters: int, *, rows: int, max_length: int, load_in_4bit: bool, dtype: str) -> float:
    """Estimated peak bytes of a LoRA step with `rows` rows of `max_length` tokens."""
    weights = parameters * BYTES_PER_PARAM["nf4" if load_in_4bit else dtype]
    return weights + rows * max_length * parameters * ROW_BYTES_PER_PARAM_TOKEN


def auto_batch(parameters: int, device: Device, *, max_length: int, load_in_4bit: bool) -> tuple[int, str]:
    """The largest power-of-two batch whose estimate fits the free memory (1 to MAX_AUTO_BATCH)."""
    dtype = weight_dtype(device)
    budget = device.free_bytes * HEADROOM
    batch = MAX_AUTO_BATCH
    while batch > 1 and memory_needed(parameters, rows=batch, max_length=max_length, load_in_4bit=load_in_4bit, dtype=dtype) > budget:
        batch //= 2
    need = memory_needed(parameters, rows=batch, max_length=max_length, load_in_4bit=load_in_4bit, dtype=dtype)
    reason = (
        f"{batch} rows a step: estimated {need / GIB:.1f} GiB of the {device.free_bytes / GIB:.1f} GiB free on "
        f"{device.name} ({parameters / 1e9:.2f}B parameters, {max_length} tokens, {dtype} weights); transformers halves it "
        "on an out-of-memory error (auto_find_batch_size)"
    )
    return batch, reason


def choose_backend(
    requested: str, parameters: int, device: Device, *, max_length: int, load_in_4bit: bool, has_unsloth: bool | None = None
) -> tuple[str, str]:
    """`auto`: trl (faster on a GPU with room), unsloth only when trl would not fit even one row."""
    if requested != "auto":
        return requested, f"{requested}: asked for"
    if not device.cuda:
        return "trl", "trl: no CUDA GPU here (unsloth needs one)"
    if has_unsloth is None:
        has_unsloth = importlib.util.find_spec("unsloth") is not None
    need = memory_needed(parameters, rows=1, max_length=max_length, load_in_4bit=load_in_4bit, dtype=weight_dtype(device))
    free = device.free_bytes * HEADROOM
    if need <= free:
        return "trl", (
            f"trl: one row needs about {need / GIB:.1f} GiB of {device.free_bytes / GIB:.1f} GiB free; unsloth saves memory "
            "but measured 0.44-0.66x trl's tokens/s on an H100, so it is kept for models that do not fit"
        )
    if has_unsloth:
        return "unsloth", f"unsloth: trl would need about {need / GIB:.1f} GiB for one row, {device.free_bytes / GIB:.1f} GiB is free"
    return "trl", f"trl: it may not fit ({need / GIB:.1f} GiB needed, {device.free_bytes / GIB:.1f} free) and unsloth is not installed"


def count_parameters(base_model: str) -> int:
    """Parameters of a model from its config alone (no weights loaded: meta tensors)."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(base_model)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    return int(model.num_parameters())


def _cap(rows: int, processes: int) -> int:
    """The largest power of two that still leaves MIN_STEPS_PER_EPOCH steps an epoch."""
    cap = 1
    while cap * 2 * processes * MIN_STEPS_PER_EPOCH <= rows:
        cap *= 2
    return cap


def finalize(recipe: Recipe, parameters: int, device: Device, *, rows: int, processes: int) -> tuple[Recipe, dict[str, str]]:
    """What the training process decides on its device: a batch left open (`auto_batch_size`) is
    sized from the GPU's free memory, one row per optimizer step less accumulation; on the CPU
    the recipe stays as it was made. Returns the recipe and the notes that say why."""
    notes: dict[str, str] = {}
    if recipe.auto_batch_size and device.cuda:
        batch, reason = auto_batch(parameters, device, max_length=recipe.max_length, load_in_4bit=recipe.load_in_4bit)
        if processes > 1:
            reason = reason.replace("transformers halves it on an out-of-memory error (auto_find_batch_size)", "fixed (several processes)")
        if batch > (cap := _cap(rows, processes)):
            batch, reason = cap, f"{reason}; capped at {cap} so that {rows} rows still make {MIN_STEPS_PER_EPOCH} steps an epoch"
        recipe = replace(recipe, batch_size=batch, gradient_accumulation=1)
        notes["batch_size"] = f"{batch} x 1 accumulation: {reason}"
    if processes > 1:
        per_step = (recipe.batch_size or 1) * (recipe.gradient_accumulation or 1) * processes
        notes["processes"] = f"{processes} processes (TRAINING_PROCESSES), {recipe.batch_size} rows each: {per_step} rows a step"
    return recipe, notes
