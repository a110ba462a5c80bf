"""Records of the formats curation/exporters.py writes (and their common hand-written shapes),
read back into one plain shape. Plain values in and out: no database.

| format | record | becomes |
|---|---|---|
| messages / openai | {"messages": [..., {"role": "assistant", ...}]} | prompt = all but the last assistant turn |
| openai (preference) | {"input": {"messages"}, "preferred_output", "non_preferred_output"} | a pair |
| alpaca | {"instruction", "input", "output"} | prompt = context turns + instruction |
| sharegpt | {"conversations": [{"from", "value"}]} | as messages |
| prompt_completion | {"prompt": str, "completion": str} | one user turn, the completion |
| dpo | {"prompt", "chosen", "rejected"} (strings or message lists) | a pair |
| kto | {"prompt", "completion", "label"} (strings or message lists) | a thumb up or down |
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

FORMATS = ("messages", "alpaca", "sharegpt", "prompt_completion", "dpo", "kto", "openai")
ROLES = ("system", "user", "assistant", "tool")
MESSAGE_KEYS = frozenset({"role", "content"})
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
}
SHAREGPT_ROLES |= {"tool": "tool", "function_call": "assistant", "observation": "tool", "bing": "assistant"}
# The "role: content" lines exporters.alpaca writes into `input` for the turns besides the instruction.
CONTEXT_LINE = re.compile(r"^(system|user|assistant|tool): ", re.MULTILINE)


class RecordError(ValueError):
    """A record that cannot be read in the format asked (or any, with auto)."""


class Parsed(NamedTuple):
    """What a record says: a prompt and the answer to learn, with its pair or its label.
    (A named tuple: built once per record, several times cheaper than a frozen dataclass.)"""

    kind: str  # sft, preference, binary
    prompt: list[dict[str, str]]
    target: str
    rejected: str = ""
    label: bool | None = None


def detect(record: Mapping[str, Any]) -> str:
    """The format of one record, from its keys."""
    keys = record.keys()
    if "messages" in keys:
        return "messages"
    if "conversations" in keys:
        return "sharegpt"
    if "instruction" in keys and "output" in keys:
        return "alpaca"
    if {"input", "preferred_output", "non_preferred_output"} <= keys:
        return "openai"
    if {"prompt", "chosen", "rejected"} <= keys:
        return "dpo"
    if {"prompt", "completion", "label"} <= keys:
        return "kto"
    if {"prompt", "completion"} <= keys:
        return "prompt_completion"
    raise RecordError(f"No known format has these fields: {', '.join(sorted(keys)) or 'none'}.")


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise RecordError(f"{name} must be a string.")
    if not value.strip():
        raise RecordError(f"{name} is empty.")
    return value


def _message(value: Any, name: str, index: int) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise RecordError(f"{name}[{index}] must be an object with role and content.")
    role, content = value.get("role"), value.get("content")
    if role not in ROLES:
        raise RecordError(f"{name}[{index}]: role must be one of {', '.join(ROLES)}.")
    if isinstance(content, list):  # OpenAI content parts: keep the text ones
        content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type") == "text")
    if not isinstance(content, str):
        raise RecordError(f"{name}[{index}]: content must be a string.")
    return {"role": role, "content": content}


def _plain(value: Any) -> bool:
    """Whether a message is already {role, content} with a known role and text content."""
    if type(value) is not dict or value.keys() != MESSAGE_KEYS:
        return False
    return type(value["content"]) is str and value["role"] in ROLES


def _messages(value: Any, name: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        raise RecordError(f"{name} must be a non-empty list of messages.")
    if all(map(_plain, value)):
        return value  # nearly every record: kept as parsed, not copied message by message
    return [_message(m, name, i) for i, m in enumerate(value)]


def _prompt(value: Any) -> list[dict[str, str]]:
    """A prompt given as a string (one user turn) or as messages."""
    if isinstance(value, str):
        return [{"role": "user", "content": _text(value, "prompt")}]
    return _messages(value, "prompt")


def _answer(value: Any, name: str) -> str:
    """An answer given as a string or as messages (the last assistant turn's content)."""
    if isinstance(value, str):
        return _text(value, name)
    turns = [m for m in _messages(value, name) if m["role"] == "assistant"]
    if not turns:
        raise RecordError(f"{name} holds no assistant message.")
    return _text(turns[-1]["content"], name)


def _split_last_answer(turns: list[dict[str, str]], name: str) -> Parsed:
    if turns[-1]["role"] != "assistant":
        raise RecordError(f"{name} must end with an assistant turn (the answer).")
    prompt, answer = turns[:-1], turns[-1]["content"]
    if "user" not in [m["role"] for m in prompt]:
        raise RecordError(f"{name} holds no user turn before the answer.")
    if not answer.strip():  # a string: the callers checked
        raise RecordError(f"{name}: the assistant's answer is empty.")
    return Parsed("sft", prompt, answer)


def parse_messages(record: Mapping[str, Any]) -> Parsed:
    return _split_last_answer(_messages(record.get("messages"), "messages"), "messages")


def parse_openai(record: Mapping[str, Any]) -> Parsed:
    if "messages" in record:
        return parse_messages(record)
    source = record.get("input")
    prompt = _messages(source.get("messages") if isinstance(source, Mapping) else None, "input.messages")
    chosen = _answer(record.get("preferred_output"), "preferred_output")
    return Parsed("preference", prompt, chosen, _answer(record.get("non_preferred_output"), "non_preferred_output"))


def _context(text: str) -> list[dict[str, str]]:
    """The alpaca `input` exporters write: "role: content" lines back into turns."""
    starts = list(CONTEXT_LINE.finditer(text))
    if not starts:
        return []
    ends = [m.start() - 1 for m in starts[1:]] + [len(text)]
    return [{"role": m.group(1), "content": text[m.end() : end]} for m, end in zip(starts, ends, strict=True)]


def parse_alpaca(record: Mapping[str, Any]) -> Parsed:
    instruction = _text(record.get("instruction"), "instruction")
    context = record.get("input") or ""
    if not isinstance(context, str):
        raise RecordError("input must be a string.")
    output = _text(record.get("output"), "output")
    if context.strip() and not CONTEXT_LINE.match(context):
        # hand-written alpaca: the input is material for the instruction, in the same turn
        return Parsed("sft", [{"role": "user", "content": f"{instruction}\n\n{context}"}], output)
    return Parsed("sft", [*_context(context), {"role": "user", "content": instruction}], output)


def parse_sharegpt(record: Mapping[str, Any]) -> Parsed:
    turns = record.get("conversations")
    if not isinstance(turns, list) or not turns:
        raise RecordError("conversations must be a non-empty list.")
    messages = []
    for index, turn in enumerate(turns):
        role = SHAREGPT_ROLES.get(turn.get("from")) if isinstance(turn, Mapping) else None
        if role is None:
            raise RecordError(f"conversations[{index}]: from must be one of {', '.join(sorted(SHAREGPT_ROLES))}.")
        if not isinstance(turn.get("value"), str):
            raise RecordError(f"conversations[{index}]: value must be a string.")
        messages.append({"role": role, "content": turn["value"]})
    return _split_last_answer(messages, "conversations")


def parse_prompt_completion(record: Mapping[str, Any]) -> Parsed:
    return Parsed("sft", _prompt(record.get("prompt")), _answer(record.get("completion"), "completion"))


def parse_dpo(record: Mapping[str, Any]) -> Parsed:
    chosen, rejected = _answer(record.get("chosen"), "chosen"), _answer(record.get("rejected"), "rejected")
    if chosen == rejected:
        raise RecordError("chosen and rejected are the same answer.")
    return Parsed("preference", _prompt(record.get("prompt")), chosen, rejected)


def parse_kto(record: Mapping[str, Any]) -> Parsed:
    label = record.get("label")
    if not isinstance(label, bool):
        raise RecordError("label must be true or false.")
    return Parsed("binary", _prompt(record.get("prompt")), _answer(record.get("completion"), "completion"), label=label)


PARSERS: dict[str, Callable[[Mapping[str, Any]], Parsed]] = {
    "messages": parse_messages,
    "openai": parse_openai,
    "alpaca": parse_alpaca,
    "sharegpt": parse_sharegpt,
    "prompt_completion": parse_prompt_completion,
    "dpo": parse_dpo,
    "kto": parse_kto,
}


def parse(record: Any, fmt: str = "auto") -> tuple[str, Parsed]:
    """(the format, what it says) of one record; raises RecordError with the reason."""
    if not isinstance(record, Mapping):
        raise RecordError("A record must be a JSON object.")
    name = detect(record) if fmt == "auto" else fmt
    if name not in PARSERS:
        raise RecordError(f"Unknown format {name!r}.")
    return name, PARSERS[name](record)
