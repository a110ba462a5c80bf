"""A generated corpus of generic skills for pretraining the offline base model: copy a span, pick
one value out of a text, fill JSON fields from a text (ids, names, amounts, dates carried over),
follow a short instruction, and stop. Every answer is short and ends the turn, so the model learns
to stop at <|im_end|>. Plain Python, deterministic from the seed; no Django, no torch."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

Message = dict[str, str]
Conversation = list[Message]


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "Ada Alan Alma Amir Anna Arlo Aya Beatriz Ben Bruno Carla Cem Chen Clara Dario Dev Elena Emil Eva Farid Femi Greta Hana "
    "Hugo Ines Ivan Jana Jonas Kai Kofi Lara Leon Lina Luca Maya Mei Milan Nadia Nils Noor Omar Olga Paolo Priya Rafael "
    "Rosa Sami Sara Sven Tara Teo Uma Vera Wim Xena Yuki Zara Zoltan"
)
LAST = _words(
    "Abbott Baker Becker Brandt Castillo Chowdhury Costa Dubois Eriksen Fischer Garcia Haddad Hoffman Ito Jansen Kowalski "
    "Larsen Lindqvist Moreau Murphy Nakamura Novak Okafor Olsen Patel Petrov Quinn Rossi Santos Schmidt Silva Tanaka "
    "Varga Wagner Weber Yilmaz Young Zhang Ziegler"
)
SYLLABLES = _words("ba be ca da de di fa ga ha jo ka ke la li lo ma me mi na ne no ra re ri ro sa se ta te to va vi za zu")
WORDS = _words(
    "apple river stone paper window garden silver orange rocket planet yellow castle bridge forest pencil mirror "
    "blanket candle ladder marble basket button coffee dragon engine feather guitar harbor island jacket kettle "
    "lemon magnet needle office parrot puzzle rabbit saddle tunnel velvet wallet"
)
VERBS = _words("refund cancel ship return update close open reset upgrade renew archive verify")
OBJECTS = _words("order invoice ticket account booking subscription parcel payment claim contract")
FIELD_NAMES = {
    "id": ["id", "order_id", "ticket_id", "invoice_id", "account_id", "ref", "number"],
    "name": ["name", "customer", "user", "contact", "owner", "agent"],
    "amount": ["amount", "total", "price", "refund", "balance"],
    "date": ["date", "due", "when", "deadline"],
    "word": ["item", "product", "color", "tag", "code"],
}


def person(rng: random.Random) -> str:
    if rng.random() < 0.3:  # made-up names too, so copying does not rely on a known list
        return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title() for _ in range(2))
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def number(rng: random.Random) -> int:
    return rng.randint(10 ** (digits := rng.randint(1, 7)) // 10, 10**digits - 1)


def amount(rng: random.Random) -> str:
    return f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}"


def date(rng: random.Random) -> str:
    return f"{rng.randint(2019, 2031)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def value(rng: random.Random, kind: str) -> str:
    makers: dict[str, Callable[[random.Random], object]] = {
        "id": number, "name": person, "amount": amount, "date": date, "word": lambda r: r.choice(WORDS),
    }  # fmt: skip
    return str(makers[kind](rng))


def json_value(kind: str, text: str) -> object:
    """What a value becomes in JSON: ids and amounts are numbers (129.50 -> 129.5), the rest strings."""
    if kind == "id":
        return int(text)
    if kind == "amount":
        return float(text)
    return text


def span(rng: random.Random) -> str:
    kinds = ["id", "name", "amount", "date", "word", "word"]
    return " ".join(value(rng, rng.choice(kinds)) for _ in range(rng.randint(1, 6)))


def chat(rng: random.Random, user: str, answer: str) -> Conversation:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    if rng.random() < 0.15:
        messages.insert(0, {"role": "system", "content": rng.choice(["You are a helpful assistant.", "Answer briefly."])})
    return messages


def ticket(rng: random.Random, kinds: list[str]) -> tuple[str, str, dict[str, str]]:
    """A sentence carrying one value of each kind; returns (text, action, values)."""
    action, thing = rng.choice(VERBS), rng.choice(OBJECTS)
    values = {kind: value(rng, kind) for kind in kinds}
    parts = {
        "id": rng.choice([f"{thing} {values.get('id')}", f"{thing} #{values.get('id')}", f"{thing} number {values.get('id')}"]),
        "name": rng.choice([f"for {values.get('name')}", f"from {values.get('name')}", f"by {values.get('name')}"]),
        "amount": rng.choice([f"amount {values.get('amount')}", f"of ${values.get('amount')}", f"total {values.get('amount')} EUR"]),
        "date": rng.choice([f"on {values.get('date')}", f"due {values.get('date')}", f"dated {values.get('date')}"]),
        "word": rng.choice([f"item {values.get('word')}", f"tagged {values.get('word')}"]),
    }
    order = list(kinds)
    rng.shuffle(order)
    text = " ".join([action.title() if rng.random() < 0.7 else f"Please {action}"] + [parts[k] for k in order])
    if "id" not in kinds:
        text += f" {thing}"
    return text + rng.choice([".", "", " please.", ", thanks."]), action, values


def skill_copy(rng: random.Random) -> Conversation:
    text = span(rng)
    return chat(rng, f"{rng.choice(['Repeat exactly:', 'Copy this:', 'Say back:', 'Echo'])} {text}", text)


def skill_pick(rng: random.Random) -> Conversation:
    kinds = rng.sample(["id", "name", "amount", "date", "word"], rng.randint(1, 4))
    text, _, values = ticket(rng, kinds)
    kind = rng.choice(kinds)
    question = {
        "id": "What is the number?", "name": "Who is it for?", "amount": "What is the amount?",
        "date": "What is the date?", "word": "Which item?",
    }[kind]  # fmt: skip
    return chat(rng, f"{text}\n{question}" if rng.random() < 0.5 else f"{question} {text}", values[kind])


def skill_json(rng: random.Random) -> Conversation:
    kinds = rng.sample(["id", "name", "amount", "date", "word"], rng.randint(1, 4))
    text, action, values = ticket(rng, kinds)
    keys = {kind: rng.choice(FIELD_NAMES[kind]) for kind in kinds}
    record: dict[str, object] = {}
    if rng.random() < 0.6:
        record["action"] = action
    record.update({keys[k]: json_value(k, values[k]) for k in kinds})
    compact = rng.random() < 0.5
    answer = json.dumps(record, separators=(",", ":") if compact else None)
    asked = ", ".join(record)
    instruction = f"Return {'compact ' if compact else ''}JSON with {asked}."
    return chat(rng, f"{instruction}\n{text}" if rng.random() < 0.5 else f"{text}\n{instruction}", answer)


def skill_instruction(rng: random.Random) -> Conversation:
    items = [value(rng, rng.choice(["id", "word", "name"])) for _ in range(rng.randint(2, 5))]
    listed = ", ".join(items)
    task, answer = rng.choice(
        [
            ("Give the first item:", items[0]),
            ("Give the last item:", items[-1]),
            ("How many items?", str(len(items))),
            ("Reverse the list:", ", ".join(reversed(items))),
            ("Join with semicolons:", "; ".join(items)),
            ("Put the items in a JSON list:", json.dumps(items)),
        ]
    )
    return chat(rng, f"{task} {listed}", answer)


def skill_label(rng: random.Random) -> Conversation:
    text, action, _ = ticket(rng, rng.sample(["id", "name", "amount"], rng.randint(1, 2)))
    options = sorted({action, *rng.sample(VERBS, 2)})
    return chat(rng, f"Which action: {', '.join(options)}?\n{text}", action)


SKILLS: list[tuple[Callable[[random.Random], Conversation], int]] = [
    (skill_copy, 3), (skill_pick, 3), (skill_json, 5), (skill_instruction, 2), (skill_label, 1),
]  # fmt: skip


def conversations(count: int, seed: int = 0) -> list[Conversation]:
    """`count` chat conversations drawn from the skills by weight, the same for the same seed."""
    rng = random.Random(seed)  # noqa: S311  (reproducible data, not secrets)
    makers, weights = zip(*SKILLS, strict=True)
    return [rng.choices(makers, weights)[0](rng) for _ in range(count)]
