"""Pure stages: deduplication (with a labelled near-duplicate set), balancing, gaps."""

from __future__ import annotations

import random
from itertools import combinations

from curation import balance, dedup, gaps

WORDS = [
    "account",
    "password",
    "reset",
    "billing",
    "invoice",
    "refund",
    "order",
    "delivery",
    "shipping",
    "address",
    "payment",
    "card",
    "subscription",
    "plan",
    "upgrade",
    "cancel",
    "login",
    "email",
    "verify",
    "support",
    "ticket",
    "error",
    "message",
    "screen",
    "button",
    "settings",
    "profile",
    "notification",
    "mobile",
    "desktop",
    "browser",
    "cache",
    "cookie",
    "download",
    "upload",
    "file",
    "folder",
    "share",
    "permission",
    "team",
    "admin",
    "report",
    "export",
    "import",
    "schedule",
    "calendar",
]


def _sentence(rng: random.Random, length: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(length))


def _variant(rng: random.Random, text: str) -> str:
    """A near duplicate: one word swapped, case and punctuation changed."""
    words = text.split()
    words[rng.randrange(len(words))] = rng.choice(WORDS)
    variant = " ".join(words)
    return rng.choice([variant.capitalize() + ".", variant + "!", "  " + variant.upper() + " ", variant])


def _labelled_set(seed: int = 7) -> tuple[list[dedup.Item], set[frozenset[int]]]:
    rng = random.Random(seed)
    items, truth, key = [], set(), 0
    for _ in range(150):
        base = _sentence(rng, rng.randint(25, 40))
        members = [base] + [_variant(rng, base) for _ in range(rng.randint(0, 3))]
        keys = []
        for text in members:
            items.append(dedup.Item(key, text, rng.random()))
            keys.append(key)
            key += 1
        truth |= {frozenset(pair) for pair in combinations(keys, 2)}
    for _ in range(60):  # hard negatives: half the words shared with an existing item
        words = items[rng.randrange(len(items))].text.split()
        half = len(words) // 2
        items.append(dedup.Item(key, " ".join(words[:half] + _sentence(rng, len(words) - half).split()), rng.random()))
        key += 1
    return items, truth


def _predicted_pairs(mapping: dict, items: list[dedup.Item]) -> set[frozenset[int]]:
    clusters: dict = {}
    for item in items:
        clusters.setdefault(mapping.get(item.key, item.key), []).append(item.key)
    return {frozenset(pair) for members in clusters.values() for pair in combinations(members, 2)}


def test_near_duplicates_reach_f1_095_on_a_labelled_set():
    items, truth = _labelled_set()
    predicted = _predicted_pairs(dedup.near_duplicates(items, threshold=0.85), items)
    true_positive = len(predicted & truth)
    precision = true_positive / len(predicted)
    recall = true_positive / len(truth)
    f1 = 2 * precision * recall / (precision + recall)
    assert len(items) > 400
    assert f1 >= 0.95, (precision, recall)


def test_the_highest_quality_member_of_a_cluster_stays():
    items = [dedup.Item("a", "reset my password please now", 0.5), dedup.Item("b", "Reset my password, please now!", 0.9)]
    assert dedup.near_duplicates(items, threshold=0.85) == {"a": "b"}


def test_exact_duplicates_are_found_by_normalized_hash():
    one = dedup.content_hash("sft", "Hello  World!", "Hi.")
    assert one == dedup.content_hash("sft", "hello world", "hi")
    assert one != dedup.content_hash("binary", "hello world", "hi")
    assert dedup.exact_duplicates([(1, one, 0.5), (2, one, 0.7), (3, "other", 0.1)]) == {1: 2}


def test_balance_keeps_the_best_of_each_group_and_is_deterministic():
    items = [("pos", q / 10) for q in range(10)] + [("neg", q / 10) for q in range(3)]
    kept = balance.balance(items, group=lambda i: i[0], quality=lambda i: i[1], seed=1)
    assert sorted(kept) == sorted([("neg", 0.0), ("neg", 0.1), ("neg", 0.2), ("pos", 0.9), ("pos", 0.8), ("pos", 0.7)])
    ties = [("pos", 0.5, i) for i in range(10)] + [("neg", 0.5, i) for i in range(2)]
    first = balance.balance(ties, group=lambda i: i[0], quality=lambda i: i[1], seed=3)
    assert first == balance.balance(ties, group=lambda i: i[0], quality=lambda i: i[1], seed=3)
    assert first != balance.balance(ties, group=lambda i: i[0], quality=lambda i: i[1], seed=4)


def test_gaps_cluster_similar_questions_largest_first():
    queries = [
        (1, "How do I export my invoices to PDF?"),
        (2, "export invoices as pdf"),
        (3, "Can I export all invoices to a PDF file"),
        (4, "What is the refund policy for annual plans?"),
        (5, "refund policy annual plan"),
        (6, "Why is the sky blue"),
    ]
    found = gaps.cluster(queries)
    assert [g.size for g in found] == [3, 2, 1]
    assert sorted(found[0].members) == [1, 2, 3]
    assert "invoice" in found[0].representative.lower()


def _tied_groups() -> list[dedup.Item]:
    """Forty groups of three near duplicates of equal quality; integer keys cross 10 and 100."""
    rng = random.Random(11)
    items, key = [], 0
    for _ in range(40):
        base = _sentence(rng, 30)
        for text in (base, _variant(rng, base), _variant(rng, base)):
            items.append(dedup.Item(key, text, 0.8))
            key += 1
    return items


def test_near_duplicate_keepers_do_not_depend_on_the_order_items_arrive_in():
    items = _tied_groups()
    expected = dedup.near_duplicates(items, threshold=0.85)
    assert len(expected) >= 60
    for seed in range(5):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        assert dedup.near_duplicates(shuffled, threshold=0.85) == expected


def test_a_quality_tie_keeps_the_lowest_rank_and_then_the_lowest_key():
    same = "reset my password please now"
    assert dedup.near_duplicates([dedup.Item(10, same, 0.5), dedup.Item(9, same, 0.5)]) == {10: 9}
    ranked = [dedup.Item(1, same, 0.5, rank="b"), dedup.Item(2, same, 0.5, rank="a")]
    assert dedup.near_duplicates(ranked) == {1: 2}
    digest = dedup.content_hash("sft", same)
    assert dedup.exact_duplicates([(10, digest, 0.5), (9, digest, 0.5)]) == {10: 9}
    assert dedup.exact_duplicates([(1, digest, 0.5, "b"), (2, digest, 0.5, "a")]) == {1: 2}


def test_exact_duplicate_keepers_do_not_depend_on_the_order_items_arrive_in():
    rows = [(key, f"hash{key % 7}", key % 3 / 2, f"example-{key % 5}") for key in range(60)]
    expected = dedup.exact_duplicates(rows)
    for seed in range(5):
        shuffled = list(rows)
        random.Random(seed).shuffle(shuffled)
        assert dedup.exact_duplicates(shuffled) == expected
