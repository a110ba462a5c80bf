#!/usr/bin/env python
"""Import benchmark: a JSONL data set through POST /api/v1/imports against the same rows sent to
POST /api/v1/interactions/batch (1,000 a request), and the import's peak RSS at two file sizes.

Both run in one process each, through Django's test client (no HTTP server: what is measured is
the platform's work). The import: upload (spooled to disk), then the import task as a django-q2
worker runs it (records parsed, validated, stored with their implied feedback). The batch: the
same records as interaction payloads, without feedback. Rows/s = records / wall seconds.

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


def run_child(env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
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
    fresh_database(url, env)
    with tempfile.TemporaryDirectory() as folder:
        env["ARTIFACTS_DIR"] = folder
        small, big = Path(folder) / "small.jsonl", Path(folder) / "big.jsonl"
        write_file(small, rows // 4, offset=10 * rows)  # new records: created, not replayed
        write_file(big, rows)
        batch = run_child(env, "--child-batch", str(rows))
        imported = timed_import(env, big)
        small_run = timed_import(env, small)
        print(f"{rows} records ({big.stat().st_size / 1e6:.0f} MB):")
        print(f"  batch endpoint: {rows / batch['seconds']:,.0f} rows/s ({batch['seconds']:.1f} s)")
        seconds, upload = imported["seconds"], imported["upload_seconds"]
        print(f"  import API:     {rows / seconds:,.0f} rows/s ({seconds:.1f} s, upload {upload:.1f} s), {imported['counts']}")
        print(f"  ratio import/batch: {batch['seconds'] / imported['seconds']:.2f}x (goal >= 0.8x)")
        print(
            f"  import worker peak RSS: {small_run['peak_rss_kb'] / 1024:.0f} MiB at {rows // 4} rows, "
            f"{imported['peak_rss_kb'] / 1024:.0f} MiB at {rows} rows"
        )
    return None


if __name__ == "__main__":
    main()
