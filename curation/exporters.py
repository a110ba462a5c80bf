"""Dataset exports as JSON Lines in the formats other tools read.

| format | kinds | record |
|---|---|---|
| messages | sft | {"messages": [..., {"role": "assistant", "content": target}]} (OpenAI chat, TRL SFT) |
| alpaca | sft | {"instruction", "input", "output"} |
| sharegpt | sft | {"conversations": [{"from": "system"/"human"/"gpt", "value"}]} |
| prompt_completion | sft | {"prompt": text, "completion": text} |
| dpo | preference | {"prompt": [messages], "chosen": [assistant], "rejected": [assistant]} (TRL DPO) |
| kto | binary | {"prompt": [messages], "completion": [assistant], "label": bool} (TRL KTO) |
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import orjson

Record = dict[str, Any]
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "tool"}


def _assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def _last_user(prompt: list[dict[str, str]]) -> str:
    users = [m["content"] for m in prompt if m["role"] == "user"]
    return users[-1] if users else (prompt[-1]["content"] if prompt else "")


def messages(item: Mapping[str, Any]) -> Record:
    return {"messages": [*item["prompt"], *_assistant(item["target"])]}


def alpaca(item: Mapping[str, Any]) -> Record:
    instruction = _last_user(item["prompt"])
    context = [m for m in item["prompt"] if m["content"] != instruction or m["role"] != "user"]
    return {"instruction": instruction, "input": "\n".join(f"{m['role']}: {m['content']}" for m in context), "output": item["target"]}


def sharegpt(item: Mapping[str, Any]) -> Record:
    turns = [*item["prompt"], *_assistant(item["target"])]
    return {"conversations": [{"from": SHAREGPT_ROLES[m["role"]], "value": m["content"]} for m in turns]}


def prompt_completion(item: Mapping[str, Any]) -> Record:
    return {"prompt": _last_user(item["prompt"]), "completion": item["target"]}


def dpo(item: Mapping[str, Any]) -> Record:
    return {"prompt": item["prompt"], "chosen": _assistant(item["target"]), "rejected": _assistant(item["rejected"])}


def kto(item: Mapping[str, Any]) -> Record:
    return {"prompt": item["prompt"], "completion": _assistant(item["target"]), "label": bool(item["label"])}


FORMATS: dict[str, tuple[Callable[[Mapping[str, Any]], Record], frozenset[str]]] = {
    "messages": (messages, frozenset({"sft"})),
    "alpaca": (alpaca, frozenset({"sft"})),
    "sharegpt": (sharegpt, frozenset({"sft"})),
    "prompt_completion": (prompt_completion, frozenset({"sft"})),
    "dpo": (dpo, frozenset({"preference"})),
    "kto": (kto, frozenset({"binary"})),
}


def default_format(kind: str) -> str:
    return {"sft": "messages", "preference": "dpo", "binary": "kto"}[kind]


def jsonl(items: Iterable[Mapping[str, Any]], fmt: str) -> Iterator[bytes]:
    """One JSON line per item, streamed."""
    to_record = FORMATS[fmt][0]
    for item in items:
        yield orjson.dumps(to_record(item)) + b"\n"
