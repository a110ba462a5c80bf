"""Training recipes: what the user set, and sensible choices for what they left open, with the
reason for each choice recorded in the job. Plain values in, plain values out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

METHODS = ("sft", "dpo", "kto")
METHOD_FOR_KIND = {"sft": "sft", "preference": "dpo", "binary": "kto"}
TINY_MODEL_PARAMETERS = 50_000_000


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

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules) if self.target_modules else None
        return data


class RecipeError(ValueError):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("invalid recipe")
        self.errors = errors


def parse(values: dict[str, Any] | None) -> Recipe:
    """A Recipe from user input; unknown keys and bad values raise RecipeError."""
    values = dict(values or {})
    known = {f.name for f in fields(Recipe)}
    errors = {name: ["Unknown recipe field."] for name in values.keys() - known}
    positive = ("lora_rank", "batch_size", "gradient_accumulation", "max_length", "save_steps", "logging_steps")
    for name in positive:
        if name in values and (type(values[name]) is not int or values[name] < 1):
            errors[name] = ["Must be a positive integer."]
    for name in ("learning_rate", "epochs"):
        if values.get(name) is not None and (not isinstance(values[name], int | float) or values[name] <= 0):
            errors[name] = ["Must be a positive number."]
    if "lora_dropout" in values and not (isinstance(values["lora_dropout"], int | float) and 0 <= values["lora_dropout"] < 1):
        errors["lora_dropout"] = ["Must be at least 0 and below 1."]
    if values.get("target_modules") is not None:
        modules = values["target_modules"]
        if not isinstance(modules, list) or not all(isinstance(m, str) and m for m in modules):
            errors["target_modules"] = ["Must be a list of module names."]
        else:
            values["target_modules"] = tuple(modules)
    if errors:
        raise RecipeError(errors)
    return replace(Recipe(), **values)


def resolve(recipe: Recipe, *, examples: int, parameters: int) -> tuple[Recipe, dict[str, str]]:
    """Fill the open choices from the dataset size and the model size; return why."""
    notes: dict[str, str] = {}
    tiny = parameters < TINY_MODEL_PARAMETERS
    if recipe.lora_alpha is None:
        recipe = replace(recipe, lora_alpha=2 * recipe.lora_rank)
        notes["lora_alpha"] = "twice the rank, the usual LoRA scaling"
    if recipe.learning_rate is None:
        rate = 2e-3 if tiny else 2e-4
        recipe = replace(recipe, learning_rate=rate)
        notes["learning_rate"] = (
            "2e-3: a random-initialised tiny model needs a high rate (4e-3 and above diverged here)"
            if tiny
            else "2e-4: the usual LoRA rate for pretrained models"
        )
    if recipe.batch_size is None or recipe.gradient_accumulation is None:
        batch, accumulation = (16, 1) if tiny else (2, 4)
        recipe = replace(recipe, batch_size=recipe.batch_size or batch, gradient_accumulation=recipe.gradient_accumulation or accumulation)
        notes["batch_size"] = f"{recipe.batch_size} x {recipe.gradient_accumulation} accumulation: " + (
            "the tiny model fits 16 rows a step; fewer, larger steps learned best here" if tiny else "fits a small GPU; 8 rows a step"
        )
    if recipe.epochs is None:
        effective_batch = (recipe.batch_size or 1) * (recipe.gradient_accumulation or 1)
        steps_per_epoch = max(1, -(-examples // effective_batch))
        epochs = 30 if tiny else 3
        if not tiny and examples < 200:
            epochs = 5
        if not tiny and steps_per_epoch * epochs > 3000:
            epochs = max(1, 3000 // steps_per_epoch)
        recipe = replace(recipe, epochs=float(epochs))
        notes["epochs"] = f"{epochs}: {examples} examples at {effective_batch} per step is {steps_per_epoch} steps an epoch" + (
            "; a random-initialised tiny model learns from scratch and needs many passes (10 left it at exact match 0)" if tiny else ""
        )
    return recipe, notes
