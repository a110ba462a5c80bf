"""The offline base model: a byte-level BPE tokenizer and a few-million-parameter Llama, built
with no download: pretrained (PRETRAINED, the default) on repeated random tokens and a generated
curriculum that is mostly copying (training/corpus/copying.py), or random-initialised
(BASE_MODEL_PRETRAIN_STEPS=0).

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
from collections.abc import Callable
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
    # how the tokenizer cuts text before merging pieces (_pre_tokenizer): digits, separators or bytes
    split: str = "digits"


def recipe_hash(config: TinyConfig) -> str:
    """Names a build: the config, the corpus and the code that generates and trains on it."""
    digest = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode())
    for path in (CORPUS, Path(skills.__file__), Path(copying.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# what `split="separators"` stands alone: whitespace, quotes, brackets, colons and commas
SEPARATORS = r"""\s|["':,{}\[\]()]"""
CUTS = {"digits": None, "separators": SEPARATORS, "bytes": r"[\s\S]"}  # what each split isolates first
SPLITS = tuple(CUTS)


def _pre_tokenizer(split: str = "digits") -> Any:
    """How text is cut before BPE merges pieces. "digits": one token per digit, so a number is
    the same digit tokens after a space, a quote or a colon, and copying it from the prompt into
    JSON is copying tokens one for one. "separators": words are too (`from Bado` and `"Bado` both
    give the tokens of `Bado`), whitespace and JSON punctuation standing alone. "bytes": every
    byte is a token (no merges, as ByT5 reads text), so every string is the same tokens wherever
    it stands. The finer the cut, the longer the sequences."""
    from tokenizers import Regex, pre_tokenizers

    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    cut = CUTS[split]
    steps = [pre_tokenizers.Split(Regex(cut), behavior="isolated")] if cut else []
    steps += [
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ]
    return pre_tokenizers.Sequence(steps)


def build_tokenizer(corpus: Path = CORPUS, vocab_size: int = 2048, seed: int = 0, split: str = "digits") -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = _pre_tokenizer(split)
    tokenizer.decoder = decoders.ByteLevel()
    if split == "bytes":  # the byte alphabet and the special tokens, no merges
        vocab_size = len(SPECIAL_TOKENS) + len(pre_tokenizers.ByteLevel.alphabet())
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


# Lengths of the repeated random spans. With spans of 16 to 40 tokens the model learned to copy
# from a position (a fixed offset back), not by content: after 300 steps it copied 5% of 24-token
# spans and none of 4 or 8. Spans from 2 tokens, where only content can tell where the copy
# continues, formed real induction heads: after 600 steps (rate 1e-3) 8-token spans were copied
# whole 20 times in 20, 4-token 19 in 20 (and at 3e-3 it did not learn at all).
SPAN = (2, 40)


def _induction_rows(tokenizer: Any, config: TinyConfig, generator: Any) -> tuple[Any, Any]:
    """A batch of chat turns that repeat random tokens ("Repeat: <tokens>", answered by the same
    tokens), packed into rows. Nothing in them can be predicted but by copying, so the attention
    heads that copy form there (see SPAN), where 300 steps of the text curriculum alone had not
    formed them (zero-shot copying 0%). After the PRETRAINED build the base copies made-up names
    it never saw ("Copy: Lowaro Pajo") 31 times in 40, where the build with long spans only copied
    none."""
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


Progress = Callable[[int, int, float], None]


def pretrain(model: Any, tokenizer: Any, config: TinyConfig, progress: Progress | None = None) -> dict[str, float]:
    """A full fine-tune of the random initialisation: first `induction_steps` of repeated random
    tokens (copying), then the curriculum (training/corpus/copying.py); AdamW, warmup then a cosine
    decay, rows drawn from a seeded generator. `progress(step, steps, loss)` after every step.
    Returns the first and last loss and the time."""
    import math

    import torch

    start = time.perf_counter()
    ids, labels = _conversation_rows(tokenizer, config)
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, betas=(0.9, 0.98), weight_decay=0.01)

    def rate(step: int) -> float:  # warmup, the full rate through the copying steps, then a cosine decay
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        start = max(config.warmup_steps, config.induction_steps)
        progress = max(0, step - start) / max(1, config.pretrain_steps - start)
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
        if progress is not None:
            progress(step + 1, config.pretrain_steps, losses[-1])
        if step % 50 == 0 or step == config.pretrain_steps - 1:
            logger.info("pretraining step %d/%d loss %.3f", step + 1, config.pretrain_steps, losses[-1])
    model.eval()
    window = min(20, len(losses))
    return {
        "first_loss": round(sum(losses[:window]) / window, 4),
        "last_loss": round(sum(losses[-window:]) / window, 4),
        "seconds": round(time.perf_counter() - start, 1),
    }


def build_base_model(out: Path, config: TinyConfig = TinyConfig(), progress: Progress | None = None) -> Path:
    """Build the tokenizer and a Llama into `out`, pretrained for `config.pretrain_steps`
    (0: random-initialised; `progress` as for `pretrain`); returns `out`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size=config.vocab_size, seed=config.seed, split=config.split)
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
    pretraining = pretrain(model, tokenizer, config, progress) if config.pretrain_steps else {}
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {"built_by": "learning_platform", "recipe_hash": recipe_hash(config), **asdict(config), "pretraining": pretraining}
    (out / "build_info.json").write_text(json.dumps(info, indent=2))
    logger.info("built base model in %s (%d parameters)", out, model.num_parameters())
    return out


# The pretrained build (what an empty BASE_MODEL builds unless BASE_MODEL_PRETRAIN_STEPS says
# otherwise): 500 steps of repeated random tokens (copying by content), then the curriculum with a
# quarter of the steps still copying; 2 layers of 8 heads, which learned to copy in fewer steps
# than the random model's 4 layers of 4 and take half the time a step; words cut at separators.
PRETRAINED = replace(
    TinyConfig(), num_hidden_layers=2, num_attention_heads=8, pretrain_steps=1000, induction_steps=500,
    batch_size=16, sequence_length=128, learning_rate=1e-3, warmup_steps=30, split="separators",
)  # fmt: skip


def pretrained_config(steps: int) -> TinyConfig:
    """PRETRAINED for `steps` steps (0: the random-initialised TinyConfig()); the copying steps
    keep their share of a shorter run, so the curriculum still comes after them."""
    if not steps:
        return TinyConfig()
    share = PRETRAINED.induction_steps / PRETRAINED.pretrain_steps
    copying = min(PRETRAINED.induction_steps, int(steps * share))
    return replace(PRETRAINED, pretrain_steps=steps, induction_steps=copying)


def default_config() -> TinyConfig:
    """The recipe an empty BASE_MODEL builds: PRETRAINED, or pretrained_config() of
    BASE_MODEL_PRETRAIN_STEPS when that is set (0: the random-initialised TinyConfig())."""
    steps = getattr(settings, "BASE_MODEL_PRETRAIN_STEPS", None)
    return PRETRAINED if steps is None else pretrained_config(steps)


def _build_info(base_model: str) -> dict[str, Any] | None:
    """What a build of this module recorded (build_info.json); None for any other model."""
    info = Path(base_model) / "build_info.json"
    return json.loads(info.read_text()) if info.is_file() else None


def is_pretrained(base_model: str) -> bool:
    """False only for a build of this module left random-initialised (no pretraining steps): a hub
    id, another local model or a pretrained build say True. recipes.resolve picks the tiny
    model's fine-tune rate and epochs by it."""
    built = _build_info(base_model)
    return built is None or built.get("pretrain_steps", 0) > 0


def trained_window(base_model: str) -> int | None:
    """How many positions a pretrained build of this module was trained on (its rows'
    `sequence_length`), which is what it reads well, far less than the 512 its config allows;
    None for any other model (its config's window stands)."""
    built = _build_info(base_model)
    return int(built["sequence_length"]) if built and built.get("pretrain_steps", 0) > 0 else None


def cached_model_path(root: Path, config: TinyConfig) -> Path:
    return root / "base" / recipe_hash(config) / BUILT_NAME


def built_model_path() -> Path:
    return cached_model_path(Path(settings.ARTIFACTS_DIR), default_config())


def ensure_built(root: Path, config: TinyConfig, progress: Progress | None = None) -> Path:
    """The model for `config` under `root`, built on first use under a file lock (concurrent
    processes build it once) into a temporary folder moved into place when complete."""
    return build_once(
        cached_model_path(root, config),
        lambda partial: build_base_model(partial, config, progress),
        done=lambda path: (path / "config.json").exists(),
    )


def resolve_base_model(name: str | None = None) -> str:
    """What to pass to from_pretrained: BASE_MODEL (a hub id or a path) when set, else the built
    model for the current recipe, built on first use."""
    name = name if name is not None else settings.BASE_MODEL
    if name:
        return name
    return str(ensure_built(Path(settings.ARTIFACTS_DIR), default_config()))
