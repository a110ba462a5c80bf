#!/usr/bin/env python
"""Import benchmark: a JSONL data set through POST /api/v1/imports against the same rows sent to
POST /api/v1/interactions/batch (1,000 a request), and the import's peak RSS at two file sizes.

Both run in one process each, through Django's test client (no HTTP server: what is measured is
the platform's work), each from the same start: a fresh database after a CHECKPOINT (otherwise the
second would meet the first one's rows in its indexes and its WAL's checkpoint), twice, alternating;
the faster of each side's two runs is compared (--repeat). The import runs as configured
(IMPORT_WORKERS processes, default 2) and, for comparison, in one process (IMPORT_WORKERS=1).
The import: upload (spooled to disk), then the import task as a django-q2 worker runs it (records
parsed, validated, stored with their implied feedback). The batch: the same records as
interaction payloads, without feedback. Rows/s = records / wall seconds.

Needs PostgreSQL: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/lp_bench; the
database is dropped and recreated). Usage: .venv/bin/python benchmarks/imports.py [--rows N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import fresh_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench"


def record(i: int) -> dict:
    return {
        "messages": [
            {"role": "system", "content": "You are the support assistant."},
            {"role": "user", "content": f"How do I reset my password? (request {i})"},
            {"role": "assistant", "content": f"Open Settings, then Security, then Reset password ({i})."},
        ]
    }


def write_file(path: Path, rows: int, offset: int = 0) -> None:
    with path.open("w") as out:
        for i in range(offset, offset + rows):
            out.write(json.dumps(record(i)) + "\n")


def _setup() -> object:
    import django

    django.setup()
    from rest_framework.test import APIClient

    from interactions.services import api_client_create

    _client, key = api_client_create(name=f"bench-{time.time_ns()}", scopes=["ingest", "read"])
    api = APIClient(SERVER_NAME="localhost")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api


def child_upload(path: str) -> None:
    """The API door: the multipart upload (Django spools it to a temporary file) and the queued run.
    The test client holds the request body in memory, so this process's RSS is not reported."""
    api = _setup()
    start = time.perf_counter()
    with open(path, "rb") as handle:
        response = api.post("/api/v1/imports", {"file": handle, "task": "bench"}, format="multipart")
    assert response.status_code == 202, response.content
    print(json.dumps({"seconds": time.perf_counter() - start, "run": response.json()["id"]}))


def child_run(run_id: int) -> None:
    """What the django-q2 worker does with the run; its peak RSS is the import's."""
    _setup()
    from curation import tasks
    from curation.models import ImportRun

    start = time.perf_counter()
    tasks.execute_import(run_id)
    seconds = time.perf_counter() - start
    counts = ImportRun.objects.get(pk=run_id).counts
    print(
        json.dumps(
            {
                "seconds": seconds,
                "counts": counts,
                "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                "worker_peak_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            }
        )
    )


def timed_import(env: dict[str, str], path: Path) -> dict:
    upload = run_child(env, "--child-upload", str(path))
    run = run_child(env, "--child-run", str(upload["run"]))
    return {**run, "seconds": upload["seconds"] + run["seconds"], "upload_seconds": upload["seconds"]}


def child_batch(rows: int) -> None:
    api = _setup()
    start = time.perf_counter()
    for first in range(0, rows, 1000):
        items = []
        for i in range(first, min(first + 1000, rows)):
            turns = record(i)["messages"]
            items.append(
                {
                    "task": "bench-batch",
                    "messages": turns[:-1],
                    "output_text": turns[-1]["content"],
                    "idempotency_key": f"b-{i}",
                }
            )
        response = api.post("/api/v1/interactions/batch", {"items": items}, format="json")
        assert response.status_code == 201, response.content[:500]
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


def _seconds(runs: list[dict]) -> str:
    return ", ".join(f"{r['seconds']:.1f} s" for r in runs)


def run_child(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_start(url: str, env: dict[str, str]) -> None:
    """An empty database, and nothing of the run before left to write out."""
    import psycopg

    fresh_database(url, env)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each side (the fastest counts)")
    parser.add_argument("--quick", action="store_true", help="20,000 rows")
    parser.add_argument("--child-upload")
    parser.add_argument("--child-run", type=int)
    parser.add_argument("--child-batch", type=int)
    args = parser.parse_args()
    if args.child_upload:
        return child_upload(args.child_upload)
    if args.child_run:
        return child_run(args.child_run)
    if args.child_batch:
        return child_batch(args.child_batch)
    rows = 20_000 if args.quick else args.rows
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "learning_platform.settings",
    }
    env |= {"API_THROTTLE_INGEST": "off", "API_THROTTLE_READ": "off"}
    with tempfile.TemporaryDirectory() as folder:
        env["ARTIFACTS_DIR"] = folder
        small, big = Path(folder) / "small.jsonl", Path(folder) / "big.jsonl"
        write_file(small, rows // 4)
        write_file(big, rows)
        one = {**env, "IMPORT_WORKERS": "1"}
        batches, imports, serial = [], [], []
        for _ in range(args.repeat):
            fresh_start(url, env)
            batches.append(run_child(env, "--child-batch", str(rows)))
            fresh_start(url, env)
            imports.append(timed_import(env, big))
            fresh_start(url, one)
            serial.append(timed_import(one, big))
        fresh_start(url, env)
        small_run = timed_import(env, small)
        batch, imported, alone = (min(runs, key=lambda r: r["seconds"]) for runs in (batches, imports, serial))
        workers = env.get("IMPORT_WORKERS", "2 (default)")
        print(f"{rows} records ({big.stat().st_size / 1e6:.0f} MB), fastest of {args.repeat} runs each:")
        print(f"  batch endpoint:            {rows / batch['seconds']:,.0f} rows/s ({_seconds(batches)})")
        upload = imported["upload_seconds"]
        print(f"  import API, {workers} workers: {rows / imported['seconds']:,.0f} rows/s ({_seconds(imports)}; upload {upload:.1f} s)")
        print(f"  import API, 1 process:     {rows / alone['seconds']:,.0f} rows/s ({_seconds(serial)})")
        print(f"                  {imported['counts']}")
        print(
            f"  ratio import/batch: {batch['seconds'] / imported['seconds']:.2f}x (goal >= 0.8x); "
            f"in one process {batch['seconds'] / alone['seconds']:.2f}x"
        )
        for label, small_rss, big_rss in (
            ("import process", small_run["peak_rss_kb"], imported["peak_rss_kb"]),
            ("largest worker process", small_run["worker_peak_rss_kb"], imported["worker_peak_rss_kb"]),
            ("one-process import", None, alone["peak_rss_kb"]),
        ):
            at_small = f"{small_rss / 1024:.0f} MiB at {rows // 4} rows, " if small_rss is not None else ""
            print(f"  peak RSS, {label}: {at_small}{big_rss / 1024:.0f} MiB at {rows} rows")
    return None


if __name__ == "__main__":
    main()
