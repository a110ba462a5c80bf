"""Retrieval quality of lessons with the real embedding model, on 236 labelled paraphrase pairs
written for this test (tests/curation/lessons_paraphrases.jsonl: a request a lesson was made
from, and the same request worded otherwise, across support, code, ops, science, cooking,
travel...): the lesson of each paraphrase is among the 5 nearest for at least 90% of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

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


def test_the_int8_encoder_keeps_the_float_models_vectors():
    """LESSON_EMBEDDER=onnx (the default) against the float model in torch on the same texts: an
    index built by either stays usable with the other."""
    texts = [p["lesson"] for p in PAIRS[:80]] + [p["paraphrase"] for p in PAIRS[:80]]
    int8 = embedding.OnnxEncoder(embedding.onnx_path(), embedding.model_dir()).encode(texts)
    float32 = embedding.TorchEncoder().encode(texts)
    cosine = (int8 * float32).sum(axis=1)
    assert cosine.min() >= 0.97
    assert cosine.mean() >= 0.99
    assert int8.shape == (len(texts), embedding.DIM)
    assert abs(float(np.linalg.norm(int8[0])) - 1) < 1e-5


def test_once_built_the_encoder_embeds_without_importing_torch(tmp_path):
    """What a serving process pays: onnxruntime and tokenizers, not torch or transformers; and
    onnxruntime's telemetry stays off (it keeps its events and a device id under ~/.cache/Microsoft)."""
    embedding.onnx_path()  # built (once per machine) by this process
    from django.conf import settings

    code = (
        "import django, sys; django.setup(); from curation.lessons import embedding; "
        "v = embedding.embed_one('How do I reset my password?'); "
        "print(v.shape[0], 'torch' in sys.modules, 'transformers' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "ARTIFACTS_DIR": str(settings.ARTIFACTS_DIR), "HOME": str(tmp_path)}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == [str(embedding.DIM), "False", "False"]
    assert not (tmp_path / ".cache" / "Microsoft").exists()


def test_above_the_exact_limit_the_sign_bit_shortlist_keeps_the_nearest():
    """25k vectors (over EXACT_MAX, so the shortlist runs): noisy copies of 50 rows find their row
    first, scored exactly (random rows beyond it are near 0 similarity; their order is noise)."""
    from curation.lessons import index as index_module

    rng = np.random.default_rng(3)
    matrix = rng.normal(size=(index_module.EXACT_MAX + 5000, embedding.DIM)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    index = VectorIndex(embedding.DIM)
    index.add(list(range(len(matrix))), matrix)
    rows = rng.choice(len(matrix), 50, replace=False)
    queries = matrix[rows] + rng.normal(0, 0.03, (50, embedding.DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for row, query in zip(rows, queries, strict=True):
        found = index.search(query, 5)
        assert len(found) == 5
        exact = index.search(query, 1, exact=True)[0]
        assert found[0][0] == exact[0] == row
        assert abs(found[0][1] - exact[1]) < 1e-5
