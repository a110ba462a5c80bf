#!/usr/bin/env python
"""Lessons benchmark, on PostgreSQL, every baseline in the same run:

  1. indexing rate: feedback (a correction) -> lesson, through the queued task's own code
     (re-curation of the interaction, embedding, insert), lessons/s; and the embedder alone;
  2. search at N lessons (default 100k) in one task: numpy exact, numpy sign-bit shortlist +
     exact rescoring (what the index uses above 20k), sqlite-vec (vec0, float32 and bit);
  3. added serving latency, p50 and p99: the lessons-and-memory stage of serve() (settings row,
     embedding the request, search, the check query, the person's preamble) with N lessons
     indexed, against the same stage on a task without lessons (serving without lessons) —
     goal <= 10 ms p99 added.

Needs PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/lp_bench_lessons;
dropped and recreated). Usage: .venv/bin/python benchmarks/lessons.py [--lessons 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import fresh_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench_lessons"
PAIRS = [json.loads(line) for line in (ROOT / "tests/curation/lessons_paraphrases.jsonl").read_text().splitlines()]


def pct(values: list[float], share: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round((len(values) - 1) * share))]


def timed(fn, runs: int) -> tuple[float, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return round(pct(samples, 0.5), 2), round(pct(samples, 0.99), 2)


def fill(task: str, count: int, np) -> None:
    """`count` lessons in one task: the paraphrase set's requests embedded for real, the rest
    their vectors with noise (so the index holds clusters of near requests, like real traffic)."""
    from curation.lessons import embedding
    from curation.lessons.services import _bump
    from curation.models import Lesson, TrainingExample
    from interactions.models import Interaction
    from interactions.services import api_client_create

    client, _ = api_client_create(name="bench", scopes=["ingest"])
    base = embedding.embed([p["lesson"] for p in PAIRS])
    rng = np.random.default_rng(0)
    for start in range(0, count, 5000):
        size = min(5000, count - start)
        picks = rng.integers(0, len(base), size)
        vectors = base[picks] + rng.normal(0, 0.04, (size, base.shape[1])).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = [Interaction(id=uuid.uuid4(), client=client, task=task, input_text=f"q{start + i}") for i in range(size)]
        Interaction.objects.bulk_create(rows, batch_size=2500)
        examples = [
            TrainingExample(key=f"{r.id}:sft:correction", task=task, kind="sft", origin="correction", source_interaction=r,
                            prompt=[], target="a", quality_score=1, tier="gold", content_hash="h")
            for r in rows
        ]  # fmt: skip
        TrainingExample.objects.bulk_create(examples, batch_size=2500)
        lessons = [
            Lesson(task=task, example=e, source_interaction=r, origin="correction", prompt_text=PAIRS[int(p)]["lesson"],
                   answer=f"answer {start + i}", vector=v.tobytes())
            for i, (e, r, p, v) in enumerate(zip(examples, rows, picks, vectors, strict=True))
        ]  # fmt: skip
        Lesson.objects.bulk_create(lessons, batch_size=2500)
    _bump(task, removal=False)


def indexing_rate(count: int) -> dict:
    from django.db import transaction

    from curation.lessons import embedding
    from curation.lessons.services import lesson_learn
    from interactions.models import Feedback
    from interactions.services import api_client_create, interaction_record

    client, _ = api_client_create(name="bench-index", scopes=["ingest"])
    ids = []
    for i in range(count):
        text = PAIRS[i % len(PAIRS)]["paraphrase"] + f" (#{i})"
        payload = {"task": "indexing", "input_text": text, "output_text": "wrong"}
        ids.append(interaction_record(client=client, payload=payload).interaction.pk)
    for pk in ids:
        Feedback.objects.create(interaction_id=pk, kind="correction", correction="the right answer")
    embedding.embed(["warm up"])
    start = time.perf_counter()
    for pk in ids:
        with transaction.atomic():
            lesson_learn(interaction_id=pk)
    per_lesson = (time.perf_counter() - start) / count
    texts = [p["lesson"] for p in PAIRS] * 4
    start = time.perf_counter()
    embedding.embed(texts)
    batch = len(texts) / (time.perf_counter() - start)
    return {"lessons_per_s_one_by_one": round(1 / per_lesson, 1), "embeddings_per_s_batched": round(batch, 1)}


def search_backends(vectors, labels, queries, np) -> dict:
    from curation.lessons.index import VectorIndex

    index = VectorIndex(vectors.shape[1])
    index.add(list(range(len(vectors))), vectors)
    out = {}
    for name, exact in (("numpy_exact", True), ("numpy_sign_bits_rescored", False)):
        it = iter(queries * 10)
        out[name] = timed(lambda exact=exact, it=it: index.search(next(it), 5, exact=exact), 200)
    for name, exact in (("exact", True), ("shortlist", False)):  # the paraphrase's request among the top 5
        hits = [PAIRS[n]["lesson"] in {labels[i] for i, _ in index.search(q, 5, exact=exact)} for n, q in enumerate(queries)]
        out[f"paraphrase_recall_at_5_{name}"] = round(sum(hits) / len(hits), 3)
    try:
        out.update(sqlite_vec(vectors, queries))
    except ImportError:
        out["sqlite_vec"] = "not installed (pip install sqlite-vec)"
    except AttributeError:  # CPython built without SQLITE_ENABLE_LOAD_EXTENSION (this venv's)
        out["sqlite_vec"] = "cannot load: this Python's sqlite3 has no enable_load_extension"
    return out


def sqlite_vec(vectors, queries) -> dict:
    import sqlite3

    import sqlite_vec

    db = sqlite3.connect(":memory:")
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    dim = vectors.shape[1]
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dim}])")
    db.execute(f"CREATE VIRTUAL TABLE b USING vec0(embedding bit[{dim}])")
    db.executemany("INSERT INTO v(rowid, embedding) VALUES (?, ?)", ((i, v.tobytes()) for i, v in enumerate(vectors)))
    db.executemany("INSERT INTO b(rowid, embedding) VALUES (?, vec_quantize_binary(?))", ((i, v.tobytes()) for i, v in enumerate(vectors)))
    it = iter(queries * 10)
    knn = "SELECT rowid, distance FROM {} WHERE embedding MATCH {} AND k = 5"
    float_q = lambda: db.execute(knn.format("v", "?"), (next(it).tobytes(),)).fetchall()  # noqa: E731
    bit_q = lambda: db.execute(knn.format("b", "vec_quantize_binary(?)"), (next(it).tobytes(),)).fetchall()  # noqa: E731
    return {"sqlite_vec_float32": timed(float_q, 200), "sqlite_vec_bit_no_rescore": timed(bit_q, 200)}


def serving_stage(task: str, empty_task: str, queries: list[str], np) -> dict:
    from curation.lessons.serving import serving_context
    from curation.models import LessonSettings
    from interactions.models import ApiClient

    client = ApiClient.objects.get(name="bench")
    LessonSettings.objects.update_or_create(task=empty_task, defaults={})
    messages = [[{"role": "user", "content": q}] for q in queries]

    def run(on: str) -> tuple[float, float]:
        it = iter(messages * 20)
        return timed(lambda: serving_context(task=on, messages=next(it), client=client, user_id="u1", dataset_id=None), 400)

    start = time.perf_counter()
    serving_context(task=task, messages=messages[0], client=client, user_id=None, dataset_id=None)
    cold = round(time.perf_counter() - start, 2)  # the first request loads the process's cache
    run(task)  # warm up
    with_lessons, without = run(task), run(empty_task)
    return {
        "cache_load_s": cold,
        "stage_with_lessons_ms_p50_p99": with_lessons,
        "stage_without_lessons_ms_p50_p99": without,
        "added_ms_p50": round(with_lessons[0] - without[0], 2),
        "added_ms_p99": round(with_lessons[1] - without[1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lessons", type=int, default=100_000)
    parser.add_argument("--index", type=int, default=100, help="lessons indexed one by one for the rate")
    args = parser.parse_args()
    os.environ.update({"DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), "DEBUG": "true", "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "learning_platform.settings", "HF_HUB_OFFLINE": "1"})  # fmt: skip
    fresh_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    import numpy as np

    from curation.lessons import embedding

    result: dict = {"lessons": args.lessons, "load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    start = time.perf_counter()
    embedding.model()
    result["model_load_s"] = round(time.perf_counter() - start, 1)
    result["indexing"] = indexing_rate(args.index)
    start = time.perf_counter()
    fill("bench", args.lessons, np)
    result["bulk_fill_s"] = round(time.perf_counter() - start, 1)
    from curation.lessons.index import from_bytes
    from curation.models import Lesson

    rows = list(Lesson.objects.filter(task="bench").order_by("pk").values_list("vector", "prompt_text"))
    vectors = np.stack([from_bytes(v, embedding.DIM) for v, _ in rows])
    queries = embedding.embed([p["paraphrase"] for p in PAIRS])
    result["search_ms_p50_p99"] = search_backends(vectors, [label for _, label in rows], list(queries), np)
    result["serving"] = serving_stage("bench", "bench-empty", [p["paraphrase"] for p in PAIRS], np)
    result["embed_one_ms_p50_p99"] = timed(lambda: embedding.embed_one("How do I reset my password?"), 200)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
