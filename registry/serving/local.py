"""In-process inference with transformers + peft: one base model per process, each version's
adapter loaded on first use and kept in a bounded LRU, switched with PEFT's adapter API."""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import cache
from typing import Any

from django.conf import settings

from ..models import ModelVersion


class LocalBackend:
    def __init__(self) -> None:
        self.lock = threading.Lock()  # one generation at a time per process: the active adapter is shared state
        self.base_name: str | None = None
        self.model: Any = None
        self.tokenizer: Any = None
        self.adapters: OrderedDict[str, str] = OrderedDict()  # version name -> adapter path, most recent last

    def _load_base(self, base_model: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(base_model)
        self.model = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32).eval()
        self.base_name, self.adapters = base_model, OrderedDict()

    def _use(self, version: ModelVersion) -> Any:
        """The model with the version's adapter active (loaded on first use, LRU-bounded)."""
        from peft import PeftModel

        if self.base_name != version.base_model:
            self._load_base(version.base_model)
        if not version.adapter_path:
            return None  # the plain base: adapters disabled for this call
        if version.name not in self.adapters:
            if not isinstance(self.model, PeftModel):
                self.model = PeftModel.from_pretrained(self.model, version.adapter_path, adapter_name=version.name).eval()
            else:
                self.model.load_adapter(version.adapter_path, adapter_name=version.name)
            self.adapters[version.name] = version.adapter_path
            while len(self.adapters) > settings.SERVING_MAX_ADAPTERS:
                evicted, _ = self.adapters.popitem(last=False)
                self.model.delete_adapter(evicted)
        self.adapters.move_to_end(version.name)
        if self.model.active_adapter != version.name:
            self.model.set_adapter(version.name)
        return version.name

    def generate(
        self, version: ModelVersion, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, n: int
    ) -> tuple[list[str], int, list[int]]:
        import contextlib

        import torch

        with self.lock:
            adapter = self._use(version)
            prompt = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            encoded = self.tokenizer([prompt] * n, return_tensors="pt", add_special_tokens=False)
            sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            disable = (
                self.model.disable_adapter() if adapter is None and hasattr(self.model, "disable_adapter") else contextlib.nullcontext()
            )
            with torch.no_grad(), disable:
                output = self.model.generate(
                    **encoded,
                    max_new_tokens=max_tokens,
                    eos_token_id=self.tokenizer.eos_token_id,
                    pad_token_id=self.tokenizer.pad_token_id,
                    **sampling,
                )
        new = output[:, encoded["input_ids"].shape[1] :]
        texts = [t.strip() for t in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
        counts = [int((row != self.tokenizer.pad_token_id).sum()) for row in new]
        return texts, int(encoded["input_ids"].shape[1]), counts


@cache
def backend() -> LocalBackend:
    return LocalBackend()
