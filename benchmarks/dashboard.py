#!/usr/bin/env python
"""Dashboard benchmark: the server time of the staff dashboard (`GET /admin/`) and of its live
JSON over a platform with 1,000,000 interactions and 100 model versions.

Rows are generated with INSERT ... SELECT in PostgreSQL (interactions over 30 days in 5 tasks,
20% with feedback, an example for each rated 4 or 5, 100 frozen datasets of up to 1,000 items,
95 finished training jobs and 100 versions in a tree per task, a running job and an open
experiment with 2,000 trials per task, 500 lifecycle events, 20 curation runs), then the page is requested
through Django's test client (the whole request: middleware, queries, charts, template) and the
median and p90 over the runs are reported with the number of queries. Goal: < 500 ms.
Needs PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/lp_bench_dashboard;
dropped and recreated). Usage: .venv/bin/python benchmarks/dashboard.py [--rows 1000000] [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import fresh_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench_dashboard"
ENV = {"DEBUG": "false", "SECRET_KEY": "bench-" + "x" * 50, "SUBJECT_HASH_KEY": "bench", "ALLOWED_HOSTS": "testserver",
       "SECURE_SSL_REDIRECT": "false", "DJANGO_SETTINGS_MODULE": "learning_platform.settings", "LOG_LEVEL": "WARNING"}  # fmt: skip
TASKS = ("support", "billing", "commands", "translation", "summaries")
VERSIONS_PER_TASK = 20  # 100 in all: v0 (the base) and 19 trained, in a tree

INTERACTIONS = """
INSERT INTO interactions_interaction (id, client_id, session_id, task, messages, input_text, output_text, model_version,
  latency_ms, outcome, reasoning, target_tool, language, metadata, idempotency_key, request_hash, created_at, updated_at)
SELECT gen_random_uuid(), %(client)s, '', t.task, jsonb_build_array(jsonb_build_object('role', 'user', 'content', 'question ' || g)),
  'question ' || g, 'answer ' || g, 'base-' || t.task || '-v' || (g %% 20), 50 + g %% 200,
  CASE WHEN g %% 50 = 0 THEN 'failure' ELSE 'success' END, '', '', '', '{}'::jsonb, '', '',
  now() - (g * 2.6) * interval '1 second', now() - (g * 2.6) * interval '1 second'
FROM generate_series(1, %(rows)s) AS g CROSS JOIN LATERAL (SELECT (%(tasks)s::text[])[1 + g %% 5] AS task) AS t
"""
FEEDBACK = """
INSERT INTO interactions_feedback (interaction_id, kind, source, score, thumb, correction, reason, created_at)
SELECT id, 'score', 'user', 1 + (abs(hashtext(id::text)) %% 5), '', '', '', created_at
FROM interactions_interaction WHERE abs(hashtext(id::text || 'f')) %% 5 = 0
"""
EXAMPLES = """
INSERT INTO curation_trainingexample (key, task, category, kind, origin, source_interaction_id, prompt, target, rejected, signals,
  quality_score, tier, content_hash, pii_found, token_count, review_status, created_at, updated_at)
SELECT i.id || ':sft:output', i.task, '', 'sft', 'output', i.id, i.messages, i.output_text, '', '{}'::jsonb, q.score,
  CASE WHEN q.score >= 0.9 THEN 'gold' WHEN q.score >= 0.75 THEN 'silver' WHEN q.score >= 0.6 THEN 'bronze' ELSE 'reject' END,
  md5(i.id::text), '{}'::jsonb, 12, 'pending', i.created_at, i.created_at
FROM interactions_feedback f JOIN interactions_interaction i ON i.id = f.interaction_id
CROSS JOIN LATERAL (SELECT (abs(hashtext(i.id::text || 'q')) %% 1000) / 1000.0 AS score) AS q
WHERE f.score >= 4 LIMIT 150000
"""
DATASETS = """
INSERT INTO curation_dataset (task, name, version, kind, status, filters, manifest_hash, stats, tainted, tainted_reason, created_by,
  frozen_by, created_at, frozen_at)
SELECT t.task, 'default', n, 'sft', 'frozen', '{}'::jsonb, md5(t.task || n), jsonb_build_object('count', 1000), n %% 7 = 0,
  CASE WHEN n %% 7 = 0 THEN 'an erasure' ELSE '' END, 'bench', 'bench', now(), now()
FROM unnest(%(tasks)s::text[]) AS t(task) CROSS JOIN generate_series(1, %(per_task)s) AS n
"""
ITEMS = """
INSERT INTO curation_datasetitem (dataset_id, example_id, source_interaction_id, split, position, kind, category, prompt, target,
  rejected, label, quality_score, tier, content_hash, token_count)
SELECT d.id, e.id, e.source_interaction_id, 'train', e.rn, 'sft', '', e.prompt, e.target, '', NULL, e.quality_score, e.tier,
  e.content_hash, 12
FROM curation_dataset d
JOIN LATERAL (SELECT x.*, row_number() OVER (ORDER BY x.id) AS rn FROM curation_trainingexample x
              WHERE x.task = d.task AND x.tier <> 'reject' ORDER BY x.id OFFSET (d.version - 1) * 500 LIMIT 1000) AS e ON true
"""
CURVE = "(SELECT jsonb_agg(jsonb_build_object('step', s, 'loss', 2.5 * power(0.97, s) + 0.2, 'eval_loss', CASE WHEN s %%%% 10 = 0 " \
        "THEN 2.6 * power(0.97, s) + 0.25 END)) FROM generate_series(1, %(steps)s) AS s)"  # fmt: skip
JOBS = f"""
INSERT INTO training_trainingjob (task, dataset_id, base_model, method, backend, recipe, recipe_notes, status, step, total_steps,
  loss_curve, eval_loss, metrics, checkpoint, cancel_requested, log_tail, error, output_dir, adapter_path, requested_by,
  library_versions, seed, attempts, progress, created_at, started_at, finished_at, heartbeat_at)
SELECT d.task, d.id, 'base', 'sft', 'auto', '{{}}'::jsonb, '{{}}'::jsonb, 'succeeded', 100, 100, {CURVE % {"steps": 100}}, 0.4,
  '{{}}'::jsonb, '', false, '', '', '', '/artifacts/job-' || d.id, 'bench', '{{}}'::jsonb, 0, 1, 100,
  now() - interval '2 days', now() - interval '2 days', now() - interval '1 day', now() - interval '1 day'
FROM curation_dataset d WHERE d.version < {VERSIONS_PER_TASK}
"""
RUNNING = f"""
INSERT INTO training_trainingjob (task, dataset_id, base_model, method, backend, recipe, recipe_notes, status, step, total_steps,
  loss_curve, metrics, checkpoint, cancel_requested, log_tail, error, output_dir, adapter_path, requested_by, library_versions,
  seed, attempts, progress, created_at, started_at, heartbeat_at)
SELECT d.task, d.id, 'base', 'sft', 'auto', '{{}}'::jsonb, '{{}}'::jsonb, 'running', 200, 400, {CURVE % {"steps": 200}}, '{{}}'::jsonb,
  '', false, '', '', '', '', 'bench', '{{}}'::jsonb, 0, 1, 50, now(), now(), now()
FROM curation_dataset d WHERE d.version = {VERSIONS_PER_TASK}
"""
TRIALS = """
INSERT INTO abtesting_trial (experiment_id, interaction_id, shown, replayed, output_a, output_b, latency_a_ms, latency_b_ms, error,
  verdict, source, detail, ground_truth, score_a, score_b, created_at)
SELECT e.id, i.id, 'A', false, i.output_text, i.output_text || '!', 40, 45, '',
  CASE WHEN abs(hashtext(i.id::text)) %% 10 < 6 THEN 'B' WHEN abs(hashtext(i.id::text)) %% 10 < 9 THEN 'A' ELSE 'tie' END,
  'ground_truth', '{}'::jsonb, i.output_text, 0.5, 0.7, i.created_at
FROM abtesting_experiment e
JOIN LATERAL (SELECT id, output_text, created_at FROM interactions_interaction WHERE task = e.task LIMIT 2000) AS i ON true
"""


def _sql(statement: str, params: dict[str, object] | None = None) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params or {})
        return cursor.rowcount


def _versions() -> None:
    """Per task: v0 (the base) and one version per finished job; a tree (every fifth branches off v1)."""
    from registry.models import ActiveModel, LifecycleEvent, ModelVersion
    from training.models import TrainingJob

    for task in TASKS:
        base = ModelVersion.objects.create(task=task, name=f"base-{task}-v0", number=0, base_model="base", status="approved")
        jobs = list(TrainingJob.objects.filter(task=task, status="succeeded").order_by("dataset__version"))
        chain = [base]
        for number, job in enumerate(jobs, start=1):
            parent = chain[1] if number % 5 == 0 and len(chain) > 1 else chain[-1]
            chain.append(ModelVersion.objects.create(
                task=task, name=f"base-{task}-v{number}", number=number, base_model="base", parent=parent, training_job=job,
                dataset_id=job.dataset_id, status="retired" if number < len(jobs) - 1 else "candidate", adapter_path=job.adapter_path,
                metrics={"eval_loss": 0.4}, tainted=job.dataset.tainted, tainted_reason="an erasure" if job.dataset.tainted else "",
            ))  # fmt: skip
        ActiveModel.objects.create(task=task, version=chain[-2])
        LifecycleEvent.objects.bulk_create(
            [
                LifecycleEvent(task=task, action="register", actor="bench", to_version=v, from_version=v.parent)
                for v in chain
                for _ in range(5)
            ]
        )


def _experiments() -> None:
    from abtesting.models import Experiment
    from registry.models import ActiveModel, ModelVersion

    for row in ActiveModel.objects.select_related("version"):
        challenger = ModelVersion.objects.filter(task=row.task).order_by("-number").first()
        Experiment.objects.create(task=row.task, control=row.version, challenger=challenger, sample_rate=0.2, min_trials=100,
                                  max_trials=5000, max_days=14, min_win_rate=0.6, alpha=0.05, started_by="bench")  # fmt: skip


def _curation_runs() -> None:
    from curation.models import CurationRun

    counts = [{"considered": 50_000 + i * 100, "examples": 30_000 + i * 80, "duplicates": 4_000 + i * 10, "rejected": 900 + i}
              for i in range(20)]  # fmt: skip
    CurationRun.objects.bulk_create([CurationRun(task="", status="succeeded", counts=c) for c in counts])


def generate(rows: int) -> dict[str, float]:
    from django.db import transaction

    from interactions.models import ApiClient
    from training.models import TrainingPolicy

    timings = {}
    with transaction.atomic():
        client = ApiClient.objects.create(name="bench", key_prefix="x", key_hash="0" * 64, scopes=["admin"])
        steps = [
            ("interactions", INTERACTIONS, {"client": client.pk, "rows": rows, "tasks": list(TASKS)}),
            ("feedback", FEEDBACK, None), ("examples", EXAMPLES, None),
            ("datasets", DATASETS, {"tasks": list(TASKS), "per_task": VERSIONS_PER_TASK}), ("items", ITEMS, None),
            ("jobs", JOBS, None), ("running jobs", RUNNING, None),
        ]  # fmt: skip
        for name, statement, params in steps:
            start = time.perf_counter()
            count = _sql(statement, params)
            timings[name] = time.perf_counter() - start
            print(f"  {name}: {count:,} rows in {timings[name]:.1f} s", flush=True)
        _versions()
        _experiments()
        print(f"  trials: {_sql(TRIALS):,} rows", flush=True)
        _curation_runs()
        TrainingPolicy.objects.bulk_create([TrainingPolicy(task=t, min_examples=1000) for t in TASKS])
    _sql("VACUUM ANALYZE")  # as autovacuum leaves a live database: statistics and the visibility map
    return timings


def measure(runs: int) -> dict[str, object]:
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from abtesting.models import Experiment
    from training.models import TrainingJob

    client = Client()
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser("bench", "", "bench")
    client.force_login(user)
    jobs = "&".join(f"job={pk}" for pk in TrainingJob.objects.filter(status="running").values_list("pk", flat=True))
    experiments = "&".join(f"experiment={pk}" for pk in Experiment.objects.values_list("pk", flat=True))
    found: dict[str, object] = {}
    for name, url in (("dashboard", "/admin/"), ("live json", f"/admin/dashboard/live.json?{jobs}&{experiments}")):
        client.get(url)  # warm: caches, connections, templates
        times = []
        for _ in range(runs):
            with CaptureQueriesContext(connection) as queries:
                start = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, response.status_code
        ordered = sorted(times)
        found[name] = {"median_ms": round(statistics.median(times), 1), "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1),
                       "queries": len(queries), "bytes": len(response.content)}  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--measure-only", action="store_true", help="measure the database a previous run generated")
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    os.environ.update({**ENV, "DATABASE_URL": url})
    if not args.measure_only:
        print(f"fresh database {url}", flush=True)
        fresh_database(url, os.environ.copy())
    import django

    django.setup()
    if not args.measure_only:
        start = time.perf_counter()
        generate(args.rows)
        print(f"generated in {time.perf_counter() - start:.0f} s", flush=True)
    from django.test.utils import setup_test_environment

    setup_test_environment()  # the test client's host and a captured outbox
    for cache_seconds in ("0", "30"):  # every view recomputing the counts, and the default
        os.environ["DASHBOARD_CACHE_SECONDS"] = cache_seconds
        from django.conf import settings

        settings.DASHBOARD_CACHE_SECONDS = int(cache_seconds)
        for name, figures in measure(args.runs).items():
            print(f"DASHBOARD_CACHE_SECONDS={cache_seconds} {name}: {figures}")


if __name__ == "__main__":
    main()
