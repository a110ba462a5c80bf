#!/usr/bin/env python
"""Ingestion benchmark: the platform against baselines measured in the same run.

  single: POST /api/v1/interactions (DRF, API key, validation, subject, idempotency key)
          vs. /bench/bare, a plain Django view doing the same database work (subject look-up,
          insert), and /bench/insert-only (the interaction insert alone); req/s, p50, p99.
  batch:  POST /api/v1/interactions/batch of 1,000 rows vs. raw psycopg COPY of the same rows.

Needs PostgreSQL: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/lp_bench; the
database is dropped and recreated). Usage: .venv/bin/python benchmarks/ingest.py [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import fresh_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench"


def item(i: int, run: str) -> dict:
    return {
        "task": "support",
        "messages": [{"role": "user", "content": f"How do I reset my password? (request {i})"}],
        "input_text": f"How do I reset my password? (request {i})",
        "output_text": "Open Settings, then Security, then choose Reset password and follow the email link.",
        "model_version": "tiny-support-v1",
        "tokens_input": 14,
        "tokens_output": 21,
        "tokens_total": 35,
        "latency_ms": 230,
        "confidence": 0.82,
        "outcome": "success",
        "metadata": {"app": "web", "n": i},
        "idempotency_key": f"{run}-{i}",
        "user_id": f"user-{i % 500}",
    }


def prepare_database(url: str) -> None:
    fresh_database(url, {**os.environ, "DATABASE_URL": url, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings"})


def make_client(url: str) -> tuple[int, str]:
    os.environ.update({"DATABASE_URL": url, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings"})
    import django

    django.setup()
    from interactions.services import api_client_create

    client, key = api_client_create(name=f"bench-{uuid.uuid4().hex[:6]}", scopes=["ingest"])
    return client.pk, key


def start_server(url: str, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "DEBUG": "false", "SECRET_KEY": "bench-" + "x" * 50, "SUBJECT_HASH_KEY": "bench",
           "SECURE_SSL_REDIRECT": "false", "DJANGO_SETTINGS_MODULE": "benchmarks.bench_settings", "LOG_LEVEL": "WARNING"}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "learning_platform.wsgi", "-b", f"127.0.0.1:{port}", "-w", str(workers), "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit("gunicorn did not start")


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    start = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, time.perf_counter() - start


def load(port: int, path: str, bodies: list[bytes], headers: dict[str, str], concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    chunks = [bodies[i::concurrency] for i in range(concurrency)]

    def worker(chunk: list[bytes]) -> None:
        for body in chunk:
            status, seconds = post(port, path, body, headers)
            with lock:
                latencies.append(seconds)
                if status not in (200, 201):
                    errors.append(status)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{path}: {len(errors)} requests failed, e.g. HTTP {errors[0]}")
    latencies.sort()
    return {
        "rps": len(bodies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def copy_rows(url: str, client_id: int, rows: list[dict]) -> float:
    """Raw psycopg COPY of the same rows into the same table; returns rows/s."""
    import psycopg

    columns = ["id", "client_id", "task", "messages", "input_text", "output_text", "model_version", "tokens_input", "tokens_output",
               "tokens_total", "latency_ms", "confidence", "outcome", "metadata", "idempotency_key", "session_id", "reasoning",
               "target_tool", "language", "request_hash", "created_at", "updated_at"]  # fmt: skip
    with psycopg.connect(url) as conn:
        start = time.perf_counter()
        for offset in range(0, len(rows), 1000):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(f"COPY interactions_interaction ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for r in rows[offset : offset + 1000]:
                    copy.write_row([uuid.uuid4(), client_id, r["task"], json.dumps(r["messages"]), r["input_text"], r["output_text"],
                                    r["model_version"], r["tokens_input"], r["tokens_output"], r["tokens_total"], r["latency_ms"],
                                    r["confidence"], r["outcome"], json.dumps(r["metadata"]), "copy-" + r["idempotency_key"], "", "", "",
                                    "", "", "now", "now"])  # fmt: skip
        return len(rows) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    singles, batches, rounds = (300, 5, 2) if args.quick else (2000, 20, 3)

    prepare_database(url)
    client_id, key = make_client(url)
    port = 18000 + os.getpid() % 1000
    server = start_server(url, port, args.workers)
    try:
        auth = {"Authorization": f"Bearer {key}"}
        results: dict[str, list[dict[str, float]]] = {"platform": [], "bare": [], "insert-only": []}
        # warm every worker up (imports, connections) so the first requests don't count
        load(port, "/api/v1/interactions", [json.dumps(item(i, "warm")).encode() for i in range(40)], auth, args.concurrency)
        load(
            port,
            "/bench/bare",
            [json.dumps(item(i, "warmb")).encode() for i in range(40)],
            {"X-Client-Id": str(client_id)},
            args.concurrency,
        )
        for r in range(rounds):  # interleaved, so drift in the machine's load hits both alike
            run = f"s{r}"
            platform_bodies = [json.dumps(item(i, run)).encode() for i in range(singles)]
            bare_bodies = [json.dumps(item(i, "bare" + run)).encode() for i in range(singles)]
            results["platform"].append(load(port, "/api/v1/interactions", platform_bodies, auth, args.concurrency))
            results["bare"].append(load(port, "/bench/bare", bare_bodies, {"X-Client-Id": str(client_id)}, args.concurrency))
            only_bodies = [json.dumps(item(i, "only" + run)).encode() for i in range(singles)]
            results["insert-only"].append(load(port, "/bench/insert-only", only_bodies, {"X-Client-Id": str(client_id)}, args.concurrency))

        def median(name: str, metric: str) -> float:
            return statistics.median(x[metric] for x in results[name])

        print(f"single POST, {singles} requests x {rounds} rounds, concurrency {args.concurrency}, {args.workers} gunicorn workers")
        for name in ("platform", "bare", "insert-only"):
            print(
                f"  {name:11s} {median(name, 'rps'):8.0f} req/s   p50 {median(name, 'p50_ms'):6.1f} ms   p99 {median(name, 'p99_ms'):6.1f} ms"
            )
        print(f"  ratio platform/bare (same writes): {median('platform', 'rps') / median('bare', 'rps'):.2f}x (goal >= 0.9x, p99 < 50 ms)")
        print(f"  ratio platform/insert-only:        {median('platform', 'rps') / median('insert-only', 'rps'):.2f}x")

        batch_rows = [[item(i, f"b{b}") for i in range(1000)] for b in range(batches)]
        start = time.perf_counter()
        for rows in batch_rows:
            status, _ = post(port, "/api/v1/interactions/batch", json.dumps({"items": rows}).encode(), auth)
            assert status == 201, status
        api_rate = batches * 1000 / (time.perf_counter() - start)
        copy_rate = copy_rows(url, client_id, [r for rows in batch_rows for r in rows])
        print(f"batch ingest, {batches} batches of 1,000 rows")
        print(f"  platform  {api_rate:8.0f} rows/s")
        print(f"  raw COPY  {copy_rate:8.0f} rows/s")
        print(f"  ratio platform/COPY: {api_rate / copy_rate:.2f}x (goal >= 0.5x)")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(10)


if __name__ == "__main__":
    main()
