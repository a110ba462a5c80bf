"""In-process inference with transformers + peft: one base model per process, on the GPU in bf16
when there is one (fp32 on the CPU), each version's adapter loaded on first use and kept in a
bounded LRU, switched with PEFT's adapter API.

Requests are batched: callers put their request on a bounded queue and wait; one generation
thread takes the oldest request and every other waiting request for the same version and
temperature that arrives within SERVING_BATCH_WAIT_MS, and answers them with one `generate`
(left-padded, each trimmed to its own max_tokens). A full queue refuses at once (503) instead of
letting requests pile up behind the model.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

from django.conf import settings

from ..models import ModelVersion
from ..services import RegistryError

Answer = tuple[list[str], int, list[int]]


class ServingBusy(RegistryError):
    """The serving queue is full (or the answer took too long): retry later."""

    status_code = 503

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unavailable")


@dataclass
class _Request:
    version: ModelVersion
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    n: int
    done: threading.Event = field(default_factory=threading.Event)
    answer: Answer | None = None
    error: BaseException | None = None

    @property
    def key(self) -> tuple[str, float]:
        return self.version.name, self.temperature


def torch_threads() -> int:
    """SERVING_TORCH_THREADS, or the cores shared out among the processes on this host (torch's
    default of every core per process made one 64-token answer 5x slower on a busy 2-core host)."""
    if settings.SERVING_TORCH_THREADS:
        return int(settings.SERVING_TORCH_THREADS)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, settings.SERVING_PROCESSES_PER_HOST))


class LocalBackend:
    def __init__(self, *, queue_size: int | None = None, max_batch: int | None = None, wait_ms: float | None = None) -> None:
        self.queue: queue.Queue[_Request] = queue.Queue(maxsize=queue_size or settings.SERVING_QUEUE_SIZE)
        self.max_batch = max_batch or settings.SERVING_MAX_BATCH
        self.wait = (settings.SERVING_BATCH_WAIT_MS if wait_ms is None else wait_ms) / 1000
        self.busy = threading.Event()  # set while a batch generates
        self.batches: list[int] = []  # sequences per batch run, newest last (bounded), for tests and benchmarks
        self.base_name: str | None = None
        self.model: Any = None
        self.tokenizer: Any = None
        self.device = "cpu"
        self.adapters: OrderedDict[str, str] = OrderedDict()  # version name -> adapter path, most recent last
        self._held: list[_Request] = []  # taken from the queue but waiting for a batch of their own
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    # --- the callers' side ---------------------------------------------------------------

    def generate(self, version: ModelVersion, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, n: int) -> Answer:
        request = _Request(version, messages, max_tokens, temperature, n)
        self._ensure_thread()
        try:
            self.queue.put_nowait(request)
        except queue.Full:
            raise ServingBusy(f"The model is busy: {self.queue.maxsize} requests are already waiting. Retry shortly.") from None
        if not request.done.wait(settings.SERVING_TIMEOUT_SECONDS):
            raise ServingBusy(f"No answer within SERVING_TIMEOUT_SECONDS ({settings.SERVING_TIMEOUT_SECONDS} s).")
        if request.error is not None:
            raise request.error
        assert request.answer is not None
        return request.answer

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve_forever, name="local-generation", daemon=True)
                self._thread.start()

    # --- the generation thread -----------------------------------------------------------

    def _serve_forever(self) -> None:
        while True:
            batch = self._next_batch()
            self.busy.set()
            try:
                answers = self._run(batch)
            except Exception as exc:  # handed to every waiting caller, who re-raises it
                for request in batch:
                    request.error = exc
            else:
                for request, answer in zip(batch, answers, strict=True):
                    request.answer = answer
            finally:
                self.busy.clear()
                for request in batch:
                    request.done.set()

    def _next_batch(self) -> list[_Request]:
        first = self._held.pop(0) if self._held else self.queue.get()
        batch, size = [first], first.n
        deadline = time.monotonic() + self.wait
        for request in list(self._held):  # held earlier for another version: maybe this one's
            if request.key == first.key and size + request.n <= self.max_batch:
                self._held.remove(request)
                batch.append(request)
                size += request.n
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                request = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if request.key == first.key and size + request.n <= self.max_batch:
                batch.append(request)
                size += request.n
            else:
                self._held.append(request)
        return batch

    def _load_base(self, base_model: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if torch.cuda.is_available():
            self.device = "cuda"
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            self.device, dtype = "cpu", torch.float32
            torch.set_num_threads(torch_threads())
        self.tokenizer = AutoTokenizer.from_pretrained(base_model, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(base_model, dtype=dtype).to(self.device).eval()
        self.base_name, self.adapters = base_model, OrderedDict()

    def _use(self, version: ModelVersion) -> str | None:
        """The version's adapter made active (loaded on first use, LRU-bounded); None for a base."""
        from peft import PeftModel

        if self.base_name != version.base_model:
            self._load_base(version.base_model)
        if not version.adapter_path:
            return None  # the plain base: adapters disabled for this call
        if self.adapters.get(version.name, version.adapter_path) != version.adapter_path:
            # the name now stands for other weights (a rebuilt database, two bases of one name)
            del self.adapters[version.name]
            self.model.delete_adapter(version.name)
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

    def _run(self, batch: list[_Request]) -> list[Answer]:
        import contextlib

        import torch

        first = batch[0]
        adapter = self._use(first.version)
        prompts = []
        for request in batch:
            prompt = self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
            prompts += [prompt] * request.n
        encoded = self.tokenizer(prompts, return_tensors="pt", add_special_tokens=False, padding=True).to(self.device)
        sampling = {"do_sample": True, "temperature": first.temperature} if first.temperature > 0 else {"do_sample": False}
        plain = adapter is None and hasattr(self.model, "disable_adapter")
        with torch.no_grad(), self.model.disable_adapter() if plain else contextlib.nullcontext():
            output = self.model.generate(
                **encoded, max_new_tokens=max(r.max_tokens for r in batch), eos_token_id=self.tokenizer.eos_token_id,
                pad_token_id=self.tokenizer.pad_token_id, **sampling,
            )  # fmt: skip
        self.batches = [*self.batches[-99:], len(prompts)]
        new, prompt_lengths = output[:, encoded["input_ids"].shape[1] :].cpu(), encoded["attention_mask"].sum(dim=1).tolist()
        return self._split(batch, new, prompt_lengths)

    def _split(self, batch: list[_Request], new: Any, prompt_lengths: list[int]) -> list[Answer]:
        answers, row = [], 0
        eos, pad = self.tokenizer.eos_token_id, self.tokenizer.pad_token_id
        for request in batch:
            texts, counts = [], []
            for sequence in new[row : row + request.n, : request.max_tokens].tolist():
                if eos in sequence:  # what a request of its own would have stopped at
                    sequence = sequence[: sequence.index(eos) + 1]
                texts.append(self.tokenizer.decode(sequence, skip_special_tokens=True).strip())
                counts.append(sum(1 for token in sequence if token != pad))
            answers.append((texts, int(prompt_lengths[row]), counts))
            row += request.n
        return answers


@lru_cache(maxsize=8)
def _window(base_model: str) -> tuple[Any, int]:
    """The base model's tokenizer and the context it reads well (0: not stated), read once per
    base: its config's window, or less for the offline model (base_models.trained_window)."""
    from transformers import AutoConfig, AutoTokenizer

    from training.base_models import trained_window

    config = AutoConfig.from_pretrained(base_model).get_text_config()
    stated = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None) or 0
    windows = [int(window) for window in (stated, trained_window(base_model)) if window]
    return AutoTokenizer.from_pretrained(base_model), min(windows, default=0)


_encode_lock = threading.Lock()  # a fast tokenizer's encode is not re-entrant across threads


def fits(version: ModelVersion, messages: list[dict[str, str]], max_tokens: int) -> bool:
    """Whether the prompt these messages make, and an answer of `max_tokens`, fit the context
    the version's base reads well (past it, answers fall apart)."""
    tokenizer, window = _window(version.base_model)
    if not window:
        return True
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    with _encode_lock:
        tokens = len(tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"])
    return tokens + max_tokens <= window


@cache
def backend() -> LocalBackend:
    return LocalBackend()
