"""The child process of a `merged` or `ollama` export: base + LoRA adapter merged into plain weights.

Run as `python registry/export/merge.py SPEC.json` (a script: nothing of Django loads); torch, transformers and peft load here only,
never in the process that asked (a web worker, the admin, the command). It writes the merged
model (safetensors, config, generation config, tokenizer with its chat template) into `out` and
`parts.json` beside the spec: what the chat template wraps around each role's content (for the
Modelfile) and the stop tokens.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SENTINEL = "\u2063SENTINEL\u2063"


def _render(tokenizer: Any, messages: list[dict[str, str]], generation: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation)


def template_parts(tokenizer: Any) -> dict[str, Any]:
    """For each role, the text the chat template writes before and after a message's content,
    and what it adds to ask for the assistant's turn (rendered, so any template works)."""
    parts: dict[str, Any] = {"roles": {}}
    for role in ("system", "user", "assistant"):
        # a template may refuse a lone system or assistant turn (raise_exception): no wrapper then
        try:
            text = _render(tokenizer, [{"role": role, "content": SENTINEL}])
        except Exception:  # noqa: S112
            continue
        if text.count(SENTINEL) == 1:
            before, after = text.split(SENTINEL)
            parts["roles"][role] = [before, after]
    plain = _render(tokenizer, [{"role": "user", "content": SENTINEL}])
    parts["generation_prompt"] = _render(tokenizer, [{"role": "user", "content": SENTINEL}], True)[len(plain) :]
    stops = [t for t in (tokenizer.eos_token, "<|im_end|>", "<|eot_id|>", "<|end|>") if t and t in tokenizer.get_vocab()]
    parts["stop"] = list(dict.fromkeys(stops))
    parts["context_length"] = int(min(getattr(tokenizer, "model_max_length", 4096), 1 << 20))
    return parts


def merge(base: str, adapter: str, out: Path) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    source = adapter if (Path(adapter) / "tokenizer_config.json").exists() else base
    tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.save_pretrained(out)
    return template_parts(tokenizer) if tokenizer.chat_template else {"roles": {}, "stop": [], "generation_prompt": ""}


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    parts = merge(spec["base"], spec["adapter"], Path(spec["out"]))
    (spec_path.parent / "parts.json").write_text(json.dumps(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
