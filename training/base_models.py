"""The offline base model: a byte-level BPE tokenizer and a few-million-parameter Llama, built
from the corpus shipped in training/corpus/ in seconds, with no download.

`BASE_MODEL` (settings) names the model every job starts from: a hub id or a local path for
real use, or empty for this built model (built under ARTIFACTS_DIR on first use). Heavy imports
(torch, transformers, tokenizers) happen inside the functions, never at module import.
"""

from __future__ import annotations

import fcntl
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from django.conf import settings

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


def build_tokenizer(corpus: Path = CORPUS, vocab_size: int = 2048) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train([str(corpus)], trainer)
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


def build_base_model(out: Path, config: TinyConfig = TinyConfig()) -> Path:
    """Build the tokenizer and a random-initialised Llama into `out`; returns `out`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(vocab_size=config.vocab_size)
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
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "build_info.json").write_text(json.dumps({"built_by": "learning_platform", **asdict(config)}, indent=2))
    logger.info("built base model in %s (%d parameters)", out, model.num_parameters())
    return out


def built_model_path() -> Path:
    return Path(settings.ARTIFACTS_DIR) / "base" / BUILT_NAME


def resolve_base_model(name: str | None = None) -> str:
    """What to pass to from_pretrained: BASE_MODEL (a hub id or a path) when set, else the built
    model, built on first use (under a file lock, so concurrent workers build it once)."""
    name = name if name is not None else settings.BASE_MODEL
    if name:
        return name
    path = built_model_path()
    if (path / "config.json").exists():
        return str(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (path / "config.json").exists():
            build_base_model(path)
    return str(path)
