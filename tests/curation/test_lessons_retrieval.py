"""Retrieval quality of lessons with the real embedding model, on 236 labelled paraphrase pairs
written for this test (tests/curation/lessons_paraphrases.jsonl: a request a lesson was made
from, and the same request worded otherwise, across support, code, ops, science, cooking,
travel...): the lesson of each paraphrase is among the 5 nearest for at least 90% of them."""

from __future__ import annotations

import json
from pathlib import Path

from curation.lessons import embedding
from curation.lessons.index import VectorIndex

PAIRS = [json.loads(line) for line in (Path(__file__).parent / "lessons_paraphrases.jsonl").read_text().splitlines()]


def recall_at(k: int, index: VectorIndex, queries) -> float:
    hits = sum(i in [pk for pk, _ in index.search(q, k)] for i, q in enumerate(queries))
    return hits / len(queries)


def test_paraphrases_find_their_lesson_in_the_top_5_at_least_90_percent_of_the_time():
    assert len(PAIRS) >= 200
    index = VectorIndex(embedding.DIM)
    index.add(list(range(len(PAIRS))), embedding.embed([p["lesson"] for p in PAIRS]))
    queries = embedding.embed([p["paraphrase"] for p in PAIRS])
    assert recall_at(5, index, queries) >= 0.9
    assert recall_at(1, index, queries) >= 0.75


def test_the_shortlist_finds_what_exact_search_finds():
    index = VectorIndex(embedding.DIM)
    index.add(list(range(len(PAIRS))), embedding.embed([p["lesson"] for p in PAIRS]))
    for query in embedding.embed([p["paraphrase"] for p in PAIRS[:50]]):
        exact = index.search(query, 5, exact=True)
        assert [pk for pk, _ in index.search(query, 5, exact=False)] == [pk for pk, _ in exact]
