"""Deduplication: exact duplicates by a normalised content hash, near duplicates by MinHash LSH.

Near duplicates are judged on the prompt and the answer apart (`judge_near_duplicates`): the
candidates are clustered by MinHash LSH on the whole text (prompt and answer), then inside a
cluster each answer is compared with the answers already seen. The same answer (or a rewording
of it) is a duplicate; an answer that differs where the prompts differ (an id, a name, an amount
carried over) is contrast, the lesson itself, and stays; any other difference to a near-identical
prompt contradicts an earlier answer to the same question: a conflict, reported for review.

Plain values in, plain values out. MinHash signatures come from rensa (a Rust MinHash, about
10x faster than datasketch here: 100k short texts hashed in 0.6 s, indexed in 0.2 s).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rensa import RMinHash, RMinHashLSH

NUM_PERM = 128
SHINGLE = 5
MAX_ANSWERS_COMPARED = 16  # earlier distinct answers of a cluster a new answer is compared with
DUPLICATE, CONTRAST, CONFLICT = "duplicate", "contrast", "conflict"
SAME_PROMPT, UNEXPLAINED = "same_prompt", "unexplained_difference"
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


@dataclass(frozen=True)
class Item:
    """`rank` breaks quality ties: give it an identity that does not depend on the order rows were
    stored in (the example's own key), so that any number of workers picks the same keepers."""

    key: Any
    text: str
    quality: float
    rank: str = ""
    answer: str = ""  # judged apart from `text` (the prompt); empty: `text` alone decides


@dataclass(frozen=True)
class Conflict:
    """Two answers that contradict each other for near-identical prompts: `kept` ranks first
    (quality, then rank, then key), `held` after it. No text: keys and figures only."""

    kept: Any
    held: Any
    similarity: float
    reason: str


@dataclass
class Judgement:
    duplicates: dict[Any, Any] = field(default_factory=dict)  # {duplicate key: kept key}
    conflicts: list[Conflict] = field(default_factory=list)
    held_out: dict[Any, Any] = field(default_factory=dict)  # {held key: kept key}: the worse side of a conflict
    contrast_kept: int = 0  # answers kept beside a near-identical prompt's because they differ as the prompts do


def normalize(text: str) -> str:
    """Lowercase, punctuation dropped, whitespace collapsed: what 'the same text' means here."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def content_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(normalize(p) for p in parts).encode("utf-8")).hexdigest()


def shingles(text: str, size: int = SHINGLE) -> list[str]:
    norm = normalize(text)
    if len(norm) <= size:
        return [norm]
    return [norm[i : i + size] for i in range(len(norm) - size + 1)]


def minhash(text: str, num_perm: int = NUM_PERM) -> RMinHash:
    signature = RMinHash(num_perm=num_perm, seed=1)
    signature.update(shingles(text))
    return signature


def _bands_for(threshold: float, num_perm: int) -> int:
    """The fewest bands whose LSH candidate threshold (1/b)^(1/r) is at least 0.1 below
    `threshold`: candidates are verified on their signatures, but a pair never proposed is lost."""
    best = 1
    for bands in range(1, num_perm + 1):
        if num_perm % bands:
            continue
        rows = num_perm // bands
        if (1 / bands) ** (1 / rows) <= threshold - 0.1:
            best = bands
            break
    return best


def _keeper_order(item: Item) -> tuple[float, str, Any]:
    """A total order, best first: quality, then rank, then key (compared as what it is: as
    strings, key 10 would beat key 9)."""
    return (-item.quality, item.rank, item.key)


def exact_duplicates(items: Iterable[Sequence[Any]]) -> dict[Any, Any]:
    """{duplicate key: kept key} among items (key, content hash, quality[, rank]): the best of
    each hash stays, whatever the order the items come in."""
    best: dict[str, Item] = {}
    groups: dict[str, list[Item]] = {}
    for row in items:
        item = Item(row[0], row[1], row[2], *row[3:])
        digest = item.text
        groups.setdefault(digest, []).append(item)
        if digest not in best or _keeper_order(item) < _keeper_order(best[digest]):
            best[digest] = item
    return {i.key: best[d].key for d, group in groups.items() for i in group if i.key != best[d].key}


def _arrival_order(item: Item) -> tuple[str, Any]:
    return (item.rank, item.key)


def near_duplicates(items: Sequence[Item], threshold: float = 0.85, num_perm: int = NUM_PERM) -> dict[Any, Any]:
    """{duplicate key: kept key} (see `judge_near_duplicates`; items without answers cluster on
    their text alone)."""
    return judge_near_duplicates(items, threshold=threshold, num_perm=num_perm).duplicates


def shingle_jaccard(a: str, b: str) -> float:
    """The exact Jaccard similarity of two texts' character 5-grams (what MinHash estimates)."""
    left, right = set(shingles(a)), set(shingles(b))
    return len(left & right) / len(left | right) if left | right else 1.0


@dataclass
class _Side:
    """What `relation` compares of one example, computed once."""

    prompt: str
    answer: str
    prompt_words: frozenset[str]
    answer_words: frozenset[str]
    _shingles: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, prompt: str, answer: str) -> _Side:
        prompt, answer = normalize(prompt), normalize(answer)
        return cls(prompt, answer, frozenset(prompt.split()), frozenset(answer.split()))

    def shingles(self, part: str = "answer") -> frozenset[str]:
        if part not in self._shingles:
            self._shingles[part] = frozenset(shingles(getattr(self, part)))
        return self._shingles[part]


def relation(prompt_a: str, answer_a: str, prompt_b: str, answer_b: str, threshold: float = 0.85) -> tuple[str, str]:
    """How two answers to near-identical prompts relate: (DUPLICATE, CONTRAST or CONFLICT, reason)."""
    return _relation(_Side.of(prompt_a, answer_a), _Side.of(prompt_b, answer_b), threshold)


def _relation(a: _Side, b: _Side, threshold: float) -> tuple[str, str]:
    """Duplicate: the same normalised answer. Contrast: a word that only one prompt has is in
    that prompt's answer and not in the other's (a value carried over: the prompts ask about
    different things, so their answers may differ). Duplicate again: a rewording (5-gram
    Jaccard of the answers >= threshold) that changes no number. Else a conflict, two answers to
    one question, when the prompts are near-identical (5-gram Jaccard >= threshold); answers to
    prompts further apart are told apart like contrast."""
    if a.answer == b.answer:
        return DUPLICATE, ""
    only_a, only_b = a.answer_words - b.answer_words, b.answer_words - a.answer_words
    if only_a & (a.prompt_words - b.prompt_words) or only_b & (b.prompt_words - a.prompt_words):
        return CONTRAST, ""
    if _near(a, b, "answer", threshold) and not any(_DIGIT.search(word) for word in only_a | only_b):
        return DUPLICATE, ""
    if a.prompt == b.prompt:
        return CONFLICT, SAME_PROMPT
    return (CONFLICT, UNEXPLAINED) if _near(a, b, "prompt", threshold) else (CONTRAST, "")


def _near(a: _Side, b: _Side, part: str, threshold: float) -> bool:
    """5-gram Jaccard of the prompts or the answers >= threshold (lengths too far apart cannot
    reach it: checked first)."""
    short, long = sorted((len(getattr(a, part)), len(getattr(b, part))))
    if short < threshold * long - SHINGLE:
        return False
    left, right = a.shingles(part), b.shingles(part)
    return len(left & right) >= threshold * len(left | right)


@dataclass
class _Answer:
    """The examples of a cluster that give one answer (its first member is compared)."""

    first: _Side
    members: list[Item]

    def keeper(self) -> Item:
        return min(self.members, key=_keeper_order)


@dataclass
class _Cluster:
    answers: list[_Answer] = field(default_factory=list)
    by_text: dict[str, _Answer] = field(default_factory=dict)  # normalised answer -> its group


def _place(item: Item, cluster: _Cluster, threshold: float, judgement: Judgement) -> list[tuple[_Answer, _Answer, str]]:
    """Put an item into its cluster: into the group of the answer it duplicates, or into
    a group of its own. Returns the conflicts of a new group with the earlier answers it was
    compared with."""
    group = cluster.by_text.get(normalize(item.answer))
    if group is not None:
        group.members.append(item)
        return []
    side = _Side.of(item.text, item.answer)
    verdicts = []
    for other in cluster.answers[:MAX_ANSWERS_COMPARED]:
        verdict, reason = _relation(other.first, side, threshold)
        if verdict == DUPLICATE:
            cluster.by_text[side.answer] = other
            other.members.append(item)
            return []
        verdicts.append((other, verdict, reason))
    group = cluster.by_text[side.answer] = _Answer(side, [item])
    cluster.answers.append(group)
    conflicts = [(other, group, reason) for other, verdict, reason in verdicts if verdict == CONFLICT]
    judgement.contrast_kept += bool(verdicts) and not conflicts
    return conflicts


def judge_near_duplicates(
    items: Sequence[Item], threshold: float = 0.85, num_perm: int = NUM_PERM, agreed: frozenset[frozenset[Any]] = frozenset()
) -> Judgement:
    """Near duplicates, contrast and conflicts among items (`text`: the prompt, `answer`: what
    answers it); `agreed` holds pairs of keys a reviewer kept both of (never a conflict again).

    Candidates: items whose whole text (prompt and answer) has an estimated Jaccard similarity
    (character 5-grams, MinHash) of at least `threshold` to a cluster's first member join that
    cluster; so answers too different to make a near duplicate of the whole are never compared
    (many good answers to one question are not conflicts). One pass over the items in
    (rank, key) order, not the order they come in, so that the clusters are the same however the
    rows were stored: each item asks the LSH index for similar cluster heads and checks them on
    their signatures; an item that matches none becomes a head itself. Only heads are indexed
    and only their signatures kept (100k examples: about 3 s). Answers: inside a cluster each
    item is compared with the first member of each of the first MAX_ANSWERS_COMPARED distinct
    answers (`relation`); the best of each answer's group stays (quality, then rank, then key),
    the others are its duplicates. Of two conflicting answers' keepers the better stays and the
    other is held out, unless the other conflicts only with keepers held out themselves."""
    ordered = sorted(items, key=_arrival_order)
    index = RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=_bands_for(threshold, num_perm))
    heads: dict[int, RMinHash] = {}
    clusters: dict[int, _Cluster] = {}
    judgement = Judgement()
    links: list[tuple[_Answer, _Answer, str]] = []
    for position, item in enumerate(ordered):
        signature = minhash(f"{item.text}\n{item.answer}" if item.answer else item.text, num_perm)
        # the index answers a set: the earliest matching head is the one joined
        head = next((c for c in sorted(index.query(signature)) if signature.jaccard(heads[c]) >= threshold), None)
        if head is None:
            index.insert(position, signature)
            heads[position], head, clusters[position] = signature, position, _Cluster()
        links += _place(item, clusters[head], threshold, judgement)
    for cluster in clusters.values():
        for group in cluster.answers:
            keeper = group.keeper()
            judgement.duplicates.update({m.key: keeper.key for m in group.members if m.key != keeper.key})
    _conflicts(links, agreed, judgement)
    return judgement


def _conflicts(links: list[tuple[_Answer, _Answer, str]], agreed: frozenset[frozenset[Any]], judgement: Judgement) -> None:
    """Conflicts between the keepers of conflicting answers, best pair first; then who is held
    out: going best first, a keeper that conflicts with a keeper still in is held out."""
    pairs: dict[tuple[Any, Any], tuple[Item, Item, str]] = {}
    for one, other, reason in links:
        kept, held = sorted((one.keeper(), other.keeper()), key=_keeper_order)
        if frozenset((kept.key, held.key)) not in agreed:
            pairs.setdefault((kept.key, held.key), (kept, held, reason))
    ordered = sorted(pairs.values(), key=lambda p: (_keeper_order(p[0]), _keeper_order(p[1])))
    judgement.conflicts = [Conflict(k.key, h.key, round(shingle_jaccard(k.text, h.text), 4), reason) for k, h, reason in ordered]
    better: dict[Any, list[Any]] = {}
    for kept, held, _reason in ordered:
        better.setdefault(held.key, []).append(kept.key)
    inside: set[Any] = set()
    for item in sorted({i.key: i for pair in ordered for i in pair[:2]}.values(), key=_keeper_order):
        blocking = [key for key in better.get(item.key, []) if key in inside]
        if blocking:
            judgement.held_out[item.key] = blocking[0]
        else:
            inside.add(item.key)
