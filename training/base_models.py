"""The offline base model: a byte-level BPE tokenizer and a few-million-parameter Llama, built
with no download: random-initialised, or pretrained (BASE_MODEL_PRETRAIN_STEPS) on a generated
curriculum that is mostly copying (training/corpus/copying.py).

`BASE_MODEL` (settings) names the model every job starts from: a hub id or a local path for
real use, or empty for this built model (built under ARTIFACTS_DIR on first use, in a folder
named by the hash of its recipe, so a change to the recipe builds a new one). Heavy imports
(torch, transformers, tokenizers) happen inside the functions, never at module import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from django.conf import settings

from learning_platform.artifacts import build_once

from .corpus import copying, skills

logger = logging.getLogger(__name__)

CORPUS = Path(__file__).resolve().parent / "corpus" / "base_corpus.txt"
BUILT_NAME = "tiny-llama"
SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML with generation markers: `assistant_only_loss` trains on what is between them, and
# <|im_end|> is inside, so the model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass(frozen=True)
class TinyConfig:
    vocab_size: int = 2048
    hidden_size: int = 256
    intermediate_size: int = 512
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 512
    seed: int = 0
    # pretraining on generated skills (BASE_MODEL_PRETRAIN_STEPS); 0 leaves the random initialisation
    pretrain_steps: int = 0
    batch_size: int = 16
    sequence_length: int = 256
    learning_rate: float = 3e-3
    warmup_steps: int = 30
    # the first steps of pretraining repeat random tokens (copying) before the curriculum
    induction_steps: int = 0


def recipe_hash(config: TinyConfig) -> str:
    """Names a build: the config, the corpus and the code that generates and trains on it."""
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for path in (CORPUS, Path(skills.__file__), Path(copying.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _pre_tokenizer() -> Any:
    """One token per digit: a number is the same digit tokens after a space, a quote or a colon,
    so copying it from the prompt into JSON is copying tokens one for one. (Isolating spaces as
    well, so words would copy alike too, made the sequences longer and the random-initialised
    model too slow a learner for the abtesting chain test.)"""
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )


def build_tokenizer(corpus: Path = CORPUS, vocab_size: int = 2048, seed: int = 0) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = _pre_tokenizer()
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    texts = corpus.read_text().splitlines()
    texts += [m["content"] for conversation in skills.conversations(2000, seed=seed) for m in conversation]
    tokenizer.train_from_iterator(texts, trainer)
    # padding side is set here: set later, it is not saved and batched generation would right-pad
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        unk_token=None,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
        model_max_length=512,
    )


def _segments(conversation: skills.Conversation) -> list[tuple[str, bool]]:
    """The chat template's text in pieces, each marked whether it is trained on (the answers)."""
    pieces: list[tuple[str, bool]] = []
    for message in conversation:
        if message["role"] == "assistant":
            pieces += [("<|im_start|>assistant\n", False), (message["content"] + "<|im_end|>", True), ("\n", False)]
        else:
            pieces.append((f"<|im_start|>{message['role']}\n{message['content']}<|im_end|>\n", False))
    return pieces


def _conversation_rows(tokenizer: Any, config: TinyConfig) -> tuple[Any, Any]:
    """Curriculum conversations, tokenized and packed whole into rows of `sequence_length` (a
    conversation is never cut: an answer whose prompt fell into another row could only be guessed),
    padded at the end; labels are -100 except on the answers."""
    import torch

    conversations = copying.conversations(2 * config.pretrain_steps * config.batch_size + 64, seed=config.seed + 1)
    segments = [_segments(c) for c in conversations]
    encoded = iter(tokenizer([text for pieces in segments for text, _ in pieces], add_special_tokens=False)["input_ids"])
    rows: list[tuple[list[int], list[int]]] = [([], [])]
    for pieces in segments:
        ids: list[int] = []
        labels: list[int] = []
        for _, trained in pieces:
            tokens = next(encoded)
            ids += tokens
            labels += tokens if trained else [-100] * len(tokens)
        if len(ids) > config.sequence_length:
            continue
        if len(rows[-1][0]) + len(ids) > config.sequence_length:
            rows.append(([], []))
        rows[-1][0].extend(ids)
        rows[-1][1].extend(labels)
    return _padded(rows, tokenizer.pad_token_id, config.sequence_length, torch)


def _padded(rows: list[tuple[list[int], list[int]]], pad: int, length: int, torch: Any) -> tuple[Any, Any]:
    ids = [row + [pad] * (length - len(row)) for row, _ in rows]
    labels = [row + [-100] * (length - len(row)) for _, row in rows]
    return torch.tensor(ids), torch.tensor(labels)


# Lengths of the repeated random spans: spans of 4 and more tokens took twice as many steps to be
# copied as spans of 16 and more (measured on a 2-layer model: loss 5.4 vs 2.4 after 225 steps).
SPAN = (16, 40)


def _induction_rows(tokenizer: Any, config: TinyConfig, generator: Any) -> tuple[Any, Any]:
    """A batch of chat turns that repeat random tokens ("Repeat: <tokens>", answered by the same
    tokens), packed into rows. Nothing in them can be predicted but by copying, so the attention
    heads that copy form within about a hundred steps (measured: loss 7.4 -> 0.04 in 125 steps),
    where 300 steps of the text curriculum alone had not formed them (zero-shot copying 0%)."""
    import torch

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    before, between, after = encode("<|im_start|>user\nRepeat: "), encode("<|im_end|>\n<|im_start|>assistant\n"), encode("<|im_end|>\n")
    low, high = len(SPECIAL_TOKENS), len(tokenizer)
    overhead = len(before) + len(between) + len(after)
    length = config.sequence_length // 2  # twice the rows, half as long: mostly one span a row, which learned fastest
    rows: list[tuple[list[int], list[int]]] = []
    for _ in range(2 * config.batch_size):
        ids: list[int] = []
        labels: list[int] = []
        while (room := (length - len(ids) - overhead) // 2) >= SPAN[0]:
            size = int(torch.randint(SPAN[0], min(room, SPAN[1]) + 1, (1,), generator=generator))
            span = torch.randint(low, high, (size,), generator=generator).tolist()
            ids += before + span + between + span + after
            labels += [-100] * (len(before) + len(span) + len(between)) + span + after[:1] + [-100] * (len(after) - 1)
        rows.append((ids, labels))
    return _padded(rows, tokenizer.pad_token_id, length, torch)


def pretrain(model: Any, tokenizer: Any, config: TinyConfig) -> dict[str, float]:
    """A full fine-tune of the random initialisation: first `induction_steps` of repeated random
    tokens (copying), then the curriculum (training/corpus/copying.py); AdamW, warmup then a cosine
    decay, rows drawn from a seeded generator. Returns the first and last loss and the time."""
    import math

    import torch

    start = time.perf_counter()
    ids, labels = _conversation_rows(tokenizer, config)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.98), weight_decay=0.01)

    def rate(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, config.pretrain_steps - config.warmup_steps)
        return 0.1 + 0.45 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    model.train()
    losses: list[float] = []
    for step in range(config.pretrain_steps):
        if step < config.induction_steps or step % 4 == 3:  # and a quarter of the later steps, not to forget it
            batch_ids, batch_labels = _induction_rows(tokenizer, config, generator)
        else:
            batch = torch.randint(0, ids.shape[0], (config.batch_size,), generator=generator)
            batch_ids, batch_labels = ids[batch], labels[batch]
        loss = model(input_ids=batch_ids, labels=batch_labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 50 == 0 or step == config.pretrain_steps - 1:
            logger.info("pretraining step %d/%d loss %.3f", step + 1, config.pretrain_steps, losses[-1])
    model.eval()
    window = min(20, len(losses))
    return {
        "first_loss": round(sum(losses[:window]) / window, 4),
        "last_loss": round(sum(losses[-window:]) / window, 4),
        "seconds": round(time.perf_counter() - start, 1),
    }


def build_base_model(out: Path, config: TinyConfig = TinyConfig()) -> Path:
    """Build the tokenizer and a Llama into `out`, pretrained for `config.pretrain_steps`
    (0: random-initialised); returns `out`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size=config.vocab_size, seed=config.seed)
    torch.manual_seed(config.seed)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(model_config)
    pretraining = pretrain(model, tokenizer, config) if config.pretrain_steps else {}
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"built_by": "learning_platform", "recipe_hash": recipe_hash(config), **asdict(config), "pretraining": pretraining}
    (out / "build_info.json").write_text(json.dumps(info, indent=2))
    logger.info("built base model in %s (%d parameters)", out, model.num_parameters())
    return out


# The pretrained build (BASE_MODEL_PRETRAIN_STEPS > 0 builds it with that many steps): 250 steps
# of repeated random tokens, then the copying curriculum; 2 layers of 8 heads, which learned to copy
# in fewer steps than the random model's 4 layers of 4 (measured on repeated random spans at width
# 128: loss 1.2 against 4.6 after 275 steps) and take half the time a step.
PRETRAINED = replace(
    TinyConfig(), num_hidden_layers=2, num_attention_heads=8, pretrain_steps=1000, induction_steps=250,
    batch_size=16, sequence_length=128, learning_rate=3e-3, warmup_steps=30,
)  # fmt: skip


def default_config() -> TinyConfig:
    """The recipe an empty BASE_MODEL builds: the random-initialised TinyConfig() unless
    BASE_MODEL_PRETRAIN_STEPS asks for PRETRAINED with that many steps."""
    steps = getattr(settings, "BASE_MODEL_PRETRAIN_STEPS", None)
    return replace(PRETRAINED, pretrain_steps=steps) if steps else TinyConfig()


def is_pretrained(base_model: str) -> bool:
    """False only for a build of this module left random-initialised (no pretraining steps): a hub
    id, another local model or a pretrained build say True. recipes.resolve picks the tiny
    model's fine-tune rate and epochs by it."""
    info = Path(base_model) / "build_info.json"
    if not info.is_file():
        return True
    return json.loads(info.read_text()).get("pretrain_steps", 0) > 0


def cached_model_path(root: Path, config: TinyConfig) -> Path:
    return root / "base" / recipe_hash(config) / BUILT_NAME


def built_model_path() -> Path:
    return cached_model_path(Path(settings.ARTIFACTS_DIR), default_config())


def ensure_built(root: Path, config: TinyConfig) -> Path:
    """The model for `config` under `root`, built on first use under a file lock (concurrent
    processes build it once) into a temporary folder moved into place when complete."""
    return build_once(
        cached_model_path(root, config),
        lambda partial: build_base_model(partial, config),
        done=lambda path: (path / "config.json").exists(),
    )


def resolve_base_model(name: str | None = None) -> str:
    """What to pass to from_pretrained: BASE_MODEL (a hub id or a path) when set, else the built
    model for the current recipe, built on first use."""
    name = name if name is not None else settings.BASE_MODEL
    if name:
        return name
    return str(ensure_built(Path(settings.ARTIFACTS_DIR), default_config()))
