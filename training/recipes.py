"""Training recipes: what the user set, and sensible choices for what they left open, with the
reason for each choice recorded in the job. Plain values in, plain values out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, cast

METHODS = ("sft", "dpo", "kto")
METHOD_FOR_KIND = {"sft": "sft", "preference": "dpo", "binary": "kto"}
TINY_MODEL_PARAMETERS = 50_000_000
# The offline tiny model pretrained on the copying curriculum (training/base_models.py PRETRAINED)
# already copies spans and stops; LoRA learns the task's labels and format on top in fewer passes.
TINY_PRETRAINED_EPOCHS = 10
TINY_PRETRAINED_RATE_NOTE = "2e-3: the tiny model's LoRA needs a high rate, pretrained or not"
TINY_PRETRAINED_EPOCHS_NOTE = (
    "; the pretrained tiny model already copies, so fewer passes than from scratch (measured on 500 tickets:"
    " held-out exact match 0.93 after 10 epochs, 0.92-0.98 over three training seeds; 0.87 after 8, 0.0 after 4)"
)


@dataclass(frozen=True)
class Recipe:
    lora_rank: int = 16
    lora_alpha: int | None = None
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] | None = None  # None: every linear projection of the architecture
    learning_rate: float | None = None
    epochs: float | None = None
    batch_size: int | None = None  # None: 2 (x4 accumulation) for real models, 16 for the tiny one
    gradient_accumulation: int | None = None
    max_length: int = 512
    warmup_steps: int = 10
    seed: int = 0
    load_in_4bit: bool = False
    save_steps: int = 50
    logging_steps: int = 5
    beta: float = 0.1  # DPO/KTO
    group_by_length: bool = False  # batch rows of similar length together (less padding)
    # On a CUDA GPU the training process sizes the batch from free memory (backends/device.py) and
    # halves it on an out-of-memory error; set by `resolve` when batch_size is left open on a real model.
    auto_batch_size: bool = False
    padding_free: bool = False  # SFT on a CUDA GPU with flash attention: no padding tokens at all

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules) if self.target_modules else None
        return data


class RecipeError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid recipe")
        self.errors = errors


@dataclass(frozen=True)
class _Range:
    """What a recipe field accepts: a whole number or a number (never a boolean) in [low, high];
    `above`/`below` make an end exclusive; `optional` lets null mean "choose for me"."""

    integer: bool
    low: float
    high: float
    above: bool = False
    below: bool = False
    optional: bool = False

    def problem(self, value: Any) -> str | None:
        if value is None:
            return None if self.optional else f"Must be {self.describe()}, not null."
        kinds: tuple[type, ...] = (int,) if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"Must be {self.describe()}."
        number = float(cast(float, value))  # a huge integer becomes a huge float: still compared correctly
        if not math.isfinite(number):
            return f"Must be {self.describe()}."
        if number <= self.low if self.above else number < self.low:
            return "Must be a positive integer." if self.integer and self.low == 1 else f"Must be {self._low()}."
        if number >= self.high if self.below else number > self.high:
            return f"Must be {self._high()}."
        return None

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if not (self.above or self.below):
            return f"{kind} from {_number(self.low)} to {_number(self.high)}"
        return f"{kind} {self._low()} and {self._high()}"

    def _low(self) -> str:
        return f"{'above' if self.above else 'at least'} {_number(self.low)}"

    def _high(self) -> str:
        return f"{'below' if self.below else 'at most'} {_number(self.high)}"


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"


SEED_MAX = 2**31 - 1  # TrainingJob.seed is a 32-bit signed integer column
RANGES = {
    "lora_rank": _Range(True, 1, 1024),
    "lora_alpha": _Range(True, 1, 4096, optional=True),
    "lora_dropout": _Range(False, 0, 1, below=True),
    "learning_rate": _Range(False, 0, 1, above=True, below=True, optional=True),
    "epochs": _Range(False, 0, 1000, above=True, optional=True),
    "batch_size": _Range(True, 1, 4096, optional=True),
    "gradient_accumulation": _Range(True, 1, 1024, optional=True),
    "max_length": _Range(True, 1, 131_072),
    "warmup_steps": _Range(True, 0, 1_000_000),
    "seed": _Range(True, 0, SEED_MAX),
    "save_steps": _Range(True, 1, 1_000_000),
    "logging_steps": _Range(True, 1, 1_000_000),
    "beta": _Range(False, 0, 100, above=True),
}
FLAGS = ("load_in_4bit", "group_by_length", "auto_batch_size", "padding_free")
MAX_MODULES = 64


def _modules_problem(modules: Any) -> str | None:
    if modules is None:
        return None
    if not isinstance(modules, list) or not 0 < len(modules) <= MAX_MODULES:
        return f"Must be a list of 1 to {MAX_MODULES} module names."
    if not all(isinstance(m, str) and 0 < len(m) <= 200 and m.isprintable() for m in modules):
        return "Must be a list of module names."
    return None


def problems(values: Any) -> dict[str, list[str]]:
    """{field: [message]} for every unknown key and bad value of a recipe; empty when it is valid."""
    if not isinstance(values, dict):
        return {"recipe": ["Must be an object of recipe fields."]}
    known = {f.name for f in fields(Recipe)}
    errors = {str(name): ["Unknown recipe field."] for name in values.keys() - known}
    for name, allowed in RANGES.items():
        if name in values and (problem := allowed.problem(values[name])):
            errors[name] = [problem]
    for name in FLAGS:
        if name in values and not isinstance(values[name], bool):
            errors[name] = ["Must be true or false."]
    if "target_modules" in values and (problem := _modules_problem(values["target_modules"])):
        errors["target_modules"] = [problem]
    return errors


def parse(values: dict[str, Any] | None) -> Recipe:
    """A Recipe from user input; unknown keys and bad values (types and ranges) raise RecipeError."""
    values = {} if values is None else values
    errors = problems(values)
    if errors:
        raise RecipeError(errors)
    values = dict(values)
    if values.get("target_modules") is not None:
        values["target_modules"] = tuple(values["target_modules"])
    return replace(Recipe(), **values)


def resolve(recipe: Recipe, *, examples: int, parameters: int, pretrained: bool = False) -> tuple[Recipe, dict[str, str]]:
    """Fill the open choices from the dataset size, the model size and, for a tiny model, whether
    it was pretrained (base_models.is_pretrained; False: random-initialised); return why."""
    notes: dict[str, str] = {}
    tiny = parameters < TINY_MODEL_PARAMETERS
    scratch = tiny and not pretrained
    if recipe.lora_alpha is None:
        recipe = replace(recipe, lora_alpha=2 * recipe.lora_rank)
        notes["lora_alpha"] = "twice the rank, the usual LoRA scaling"
    if recipe.learning_rate is None:
        rate = 2e-3 if tiny else 2e-4
        recipe = replace(recipe, learning_rate=rate)
        notes["learning_rate"] = (
            "2e-3: a random-initialised tiny model needs a high rate (4e-3 and above diverged here)"
            if scratch
            else TINY_PRETRAINED_RATE_NOTE
            if tiny
            else "2e-4: the usual LoRA rate for pretrained models"
        )
    if recipe.batch_size is None and not tiny:
        recipe = replace(recipe, auto_batch_size=True)
    if recipe.batch_size is None or recipe.gradient_accumulation is None:
        batch, accumulation = (16, 1) if tiny else (2, 4)
        recipe = replace(recipe, batch_size=recipe.batch_size or batch, gradient_accumulation=recipe.gradient_accumulation or accumulation)
        notes["batch_size"] = f"{recipe.batch_size} x {recipe.gradient_accumulation} accumulation: " + (
            "the tiny model fits 16 rows a step; fewer, larger steps learned best here"
            if tiny
            else "fits a small GPU; 8 rows a step (on a CUDA GPU the training process sizes it from free memory)"
        )
    if recipe.epochs is None:
        effective_batch = (recipe.batch_size or 1) * (recipe.gradient_accumulation or 1)
        steps_per_epoch = max(1, -(-examples // effective_batch))
        epochs = 30 if scratch else TINY_PRETRAINED_EPOCHS if tiny else 3
        if not tiny and examples < 200:
            epochs = 5
        if not tiny and steps_per_epoch * epochs > 3000:
            epochs = max(1, 3000 // steps_per_epoch)
        recipe = replace(recipe, epochs=float(epochs))
        notes["epochs"] = f"{epochs}: {examples} examples at {effective_batch} per step is {steps_per_epoch} steps an epoch" + (
            "; a random-initialised tiny model learns from scratch and needs many passes (10 left it at exact match 0)"
            if scratch
            else TINY_PRETRAINED_EPOCHS_NOTE
            if tiny
            else ""
        )
    return recipe, notes
