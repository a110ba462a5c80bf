"""What the model sees: the request with the nearest lessons as examples (mistakes marked) and
the person's preamble, as one system message put first. Plain values, no Django."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SHOT_CHARS = 600  # each part of an example is cut to this many characters


@dataclass(frozen=True)
class Shot:
    lesson_id: int
    similarity: float
    prompt: str
    answer: str
    mistake: str = ""


def query_text(messages: Sequence[Mapping[str, str]]) -> str:
    """What a request asks: its user turns (a shared system prompt would make every request alike)."""
    return "\n".join(m["content"] for m in messages if m.get("role") == "user")


def few_shot_block(shots: Sequence[Shot]) -> str:
    """The lessons, most similar first."""
    if not shots:
        return ""
    parts = ["Answers approved or corrected for similar requests (follow the good answers):"]
    for number, shot in enumerate(shots, 1):
        part = f"Example {number}\nRequest: {_cut(shot.prompt)}\nGood answer: {_cut(shot.answer)}"
        if shot.mistake:
            part += f"\nMistake to avoid (a wrong answer that was corrected): {_cut(shot.mistake)}"
        parts.append(part)
    return "\n\n".join(parts)


def with_context(messages: Sequence[Mapping[str, str]], *, preamble: str, shots: Sequence[Shot]) -> list[dict[str, str]]:
    """The messages with one system message in front holding the preamble and the examples (an
    existing first system message keeps its text, after them)."""
    blocks = [block for block in (preamble, few_shot_block(shots)) if block]
    out = [dict(m) for m in messages]
    if not blocks:
        return out
    context = "\n\n".join(blocks)
    if out and out[0].get("role") == "system":
        out[0]["content"] = context + "\n\n" + out[0]["content"]
        return out
    return [{"role": "system", "content": context}, *out]


def _cut(text: str) -> str:
    text = text.strip()
    return text if len(text) <= SHOT_CHARS else text[: SHOT_CHARS - 1] + "\u2026"
