"""Unsloth's FastLanguageModel path (CUDA only). Selected by `backends.select`, which has already
checked for a GPU and the package; the trainer loop is the TRL backend's."""

from __future__ import annotations

from typing import Any

from . import TrainSpec
from .trl_backend import TrlBackend, _lora_targets


class UnslothBackend(TrlBackend):
    name = "unsloth"

    def load(self, spec: TrainSpec) -> tuple[Any, Any]:
        from unsloth import FastLanguageModel

        return FastLanguageModel.from_pretrained(
            spec.base_model, max_seq_length=spec.recipe.max_length, load_in_4bit=spec.recipe.load_in_4bit
        )

    def wrap(self, model: Any, spec: TrainSpec) -> Any:
        from unsloth import FastLanguageModel

        recipe = spec.recipe
        return FastLanguageModel.get_peft_model(
            model,
            r=recipe.lora_rank,
            lora_alpha=recipe.lora_alpha or 2 * recipe.lora_rank,
            lora_dropout=recipe.lora_dropout,
            target_modules=list(recipe.target_modules or _lora_targets(model)),
            random_state=recipe.seed,
        )
