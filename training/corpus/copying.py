"""The pretraining curriculum of the offline base model: mostly copying. Random spans repeated,
a value looked up by its key, values carried from a free text into JSON fields (codes like
`A-48213`, made-up names, amounts like `$1,375.20`), plus the broader skills of `skills.py`.
What a LoRA fine-tune cannot teach a tiny model from a few hundred examples is the induction
itself (find the span after the cue, copy it token by token); this corpus teaches that, on values
that never repeat. Plain Python, deterministic from the seed; no Django, no torch."""

from __future__ import annotations

import json
import random
import string
from collections.abc import Callable

from . import skills

Conversation = skills.Conversation
LETTERS = string.ascii_uppercase
FILLER = skills._words(
    "hello hi team so the my our a please urgent again today yesterday still kindly note regarding about since "
    "this that it was is has been not yet and but also just we I you they customer client"
)
KEYS = {
    "code": ["id", "ref", "code", "ticket", "order", "case", "number", "invoice", "account"],
    "name": ["name", "customer", "client", "user", "owner", "contact", "from", "person"],
    "money": ["amount", "total", "price", "sum", "charge", "refund", "balance", "cost"],
    "word": ["item", "product", "plan", "color", "tag", "city", "topic"],
    "date": ["date", "due", "when", "day"],
}


def code(rng: random.Random) -> str:
    digits = "".join(rng.choice(string.digits) for _ in range(rng.randint(2, 7)))
    prefix = "".join(rng.choice(LETTERS) for _ in range(rng.randint(0, 3)))
    return rng.choice([f"{prefix}-{digits}", f"{prefix}{digits}", f"#{digits}", digits]) if prefix else digits


CONSONANTS, VOWELS = "bcdfghjklmnprstvwxyz", "aeiou"


def made_up_word(rng: random.Random) -> str:
    """A word no list holds: syllables of a random consonant (sometimes two) and a vowel, or
    plain random letters, so it tokenizes into arbitrary pieces that can only be copied."""
    if rng.random() < 0.25:
        return "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8)))
    syllables = []
    for _ in range(rng.randint(1, 4)):
        onset = rng.choice(CONSONANTS) + (rng.choice(CONSONANTS) if rng.random() < 0.15 else "")
        syllables.append(onset + rng.choice(VOWELS) + (rng.choice(CONSONANTS) if rng.random() < 0.2 else ""))
    return "".join(syllables)


def name(rng: random.Random) -> str:
    if rng.random() < 0.85:
        return " ".join(made_up_word(rng).title() for _ in range(rng.choice([1, 2, 2, 2, 3])))
    return skills.person(rng)


def money(rng: random.Random) -> str:
    whole = rng.randint(1, 10 ** rng.randint(1, 6))
    cents = f".{rng.randint(0, 99):02d}" if rng.random() < 0.8 else ""
    grouped = f"{whole:,}" if rng.random() < 0.7 else str(whole)
    return rng.choice([f"${grouped}{cents}", f"{grouped}{cents}", f"€{grouped}{cents}", f"{grouped}{cents} USD"])


MAKERS: dict[str, Callable[[random.Random], str]] = {
    "code": code, "name": name, "money": money, "date": skills.date,
    "word": lambda r: r.choice(skills.WORDS) if r.random() < 0.5 else made_up_word(r),
}  # fmt: skip


def noise(rng: random.Random) -> str:
    """A span of unrelated pieces: nothing in it can be guessed, only copied."""
    pieces = [rng.choice([*MAKERS.values(), lambda r: r.choice(FILLER)])(rng) for _ in range(rng.randint(1, 8))]
    return " ".join(pieces)


def copy_span(rng: random.Random) -> Conversation:
    text = noise(rng)
    cue = rng.choice(["Repeat exactly:", "Copy:", "Say back:", "Echo:", "Repeat", "Copy this text:"])
    return skills.chat(rng, f"{cue} {text}" if rng.random() < 0.8 else f"{text}\n{cue.rstrip(':')} that.", text)


def lookup(rng: random.Random) -> Conversation:
    kinds = rng.sample(list(MAKERS), rng.randint(2, 5))
    keys = {kind: rng.choice(KEYS[kind]) for kind in kinds}
    values = {kind: MAKERS[kind](rng) for kind in kinds}
    sep = rng.choice([": ", "=", " - ", " is "])
    lines = [f"{keys[k]}{sep}{values[k]}" for k in kinds]
    asked = rng.choice(kinds)
    question = rng.choice([f"What is the {keys[asked]}?", f"{keys[asked]}?", f"Give the {keys[asked]}."])
    return skills.chat(rng, rng.choice(["\n", "; ", ", "]).join(lines) + f"\n{question}", values[asked])


def sentence(rng: random.Random, values: dict[str, str]) -> str:
    """A free text that mentions each value once, in any order, among filler words."""
    code, person, money = values.get("code"), values.get("name"), values.get("money")
    phrases = {
        "code": [f"{rng.choice(skills.OBJECTS)} {code}", f"ref {code}", f"#{code}".replace("##", "#")],
        "name": [f"I am {person}", f"from {person}", f"{person} here", f"for {person}"],
        "money": [f"charged {money}", f"of {money}", f"{money} total", f"paid {money}"],
        "word": [f"the {values.get('word')}", f"about {values.get('word')}"],
        "date": [f"on {values.get('date')}", f"since {values.get('date')}"],
    }
    parts = [rng.choice(phrases[kind]) for kind in values]
    rng.shuffle(parts)
    words: list[str] = []
    for part in parts:
        words += [rng.choice(FILLER) for _ in range(rng.randint(0, 3))] + [part]
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice([".", "!", "", " thanks.", ". Please help."])


def extract_json(rng: random.Random) -> Conversation:
    kinds = rng.sample(list(MAKERS), rng.randint(1, 4))
    values = {kind: MAKERS[kind](rng) for kind in kinds}
    text = sentence(rng, values)
    keys = {kind: rng.choice(KEYS[kind]) for kind in kinds}
    record: dict[str, str] = {}
    labels = rng.sample(skills.VERBS, 3)
    with_label = rng.random() < 0.5
    if with_label:
        record["label"] = labels[0]
    record.update({keys[k]: values[k] for k in kinds})
    order = list(record)
    answer = json.dumps(record, separators=(",", ":") if rng.random() < 0.3 else None)
    instruction = f"JSON with {', '.join(order)}"
    if with_label:
        instruction += f"; label is {labels[0]}"
    prompt = rng.choice([f"{instruction}.\n{text}", f"{text}\n{instruction}.", f"{instruction}: {text}"])
    return skills.chat(rng, prompt, answer)


CURRICULUM: list[tuple[Callable[[random.Random], Conversation], int]] = [
    (copy_span, 3), (lookup, 2), (extract_json, 6),
    (skills.skill_copy, 1), (skills.skill_pick, 1), (skills.skill_json, 2), (skills.skill_instruction, 1),
]  # fmt: skip


def conversations(count: int, seed: int = 0) -> list[Conversation]:
    """`count` conversations drawn from the curriculum by weight, the same for the same seed."""
    rng = random.Random(seed)  # noqa: S311  (reproducible data, not secrets)
    makers, weights = zip(*CURRICULUM, strict=True)
    return [rng.choices(makers, weights)[0](rng) for _ in range(count)]
