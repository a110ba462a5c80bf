#!/usr/bin/env python
"""Curation benchmark: the whole pipeline over N interactions with feedback in PostgreSQL,
against a naive per-row ORM loop over 20,000 of the same rows, measured in the same run.

Reports wall time, rows/s per stage (from the run's stage timings), peak RSS of the
`manage.py curate` process, and the ratio of the pipeline's rows/s to the naive loop's.
Goals on a 2-core machine: 1,000,000 interactions in <= 5 minutes, <= 2 GB RSS, >= 10x naive.

Needs PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/lp_bench_curation;
dropped and recreated). Usage: .venv/bin/python benchmarks/curation.py [--rows 1000000] [--naive 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import fresh_database, tree_rss_kb  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench_curation"
ENV = {"DEBUG": "true", "DJANGO_SETTINGS_MODULE": "learning_platform.settings", "LOG_LEVEL": "WARNING"}

TOPICS = ["password", "invoice", "refund", "subscription", "delivery", "account", "billing address", "two-factor login", "export",
          "notification", "team member", "API token", "calendar sync", "mobile app", "dark mode", "data import", "receipt"]  # fmt: skip
ASKS = ["How do I change my {t}?", "Why is my {t} not working since {n} days?", "Can I get help with the {t} for order {n}?",
        "What happens to my {t} when I cancel?", "Where do I find the {t} settings on version {n}?",
        "Is there a limit on {t} per month ({n} so far)?", "My {t} shows an error, code {n}. What now?"]  # fmt: skip
ANSWERS = ["Open Settings, choose {t} and follow the steps.", "Your {t} updates within {n} minutes; try again then.",
           "Contact support with the {t} details and we will fix it.", "The {t} stays active until the end of the period.",
           "[insert answer about {t}]", "Error: {t} service unavailable"]  # fmt: skip
PII = [" My email is jane{n}@example.com.", " Call me on +44 20 7946 {n:04d}.", " Card 4111 1111 1111 1111."]


def prepare(url: str) -> None:
    fresh_database(url, {**os.environ, **ENV, "DATABASE_URL": url})


def generate(rows: int, seed: int = 1) -> float:
    """Interactions, subjects, candidates and feedback written with COPY; returns seconds."""
    from django.utils import timezone

    from interactions.models import ApiClient, Candidate, Feedback, Interaction, Subject
    from learning_platform.db import fast_insert

    rng = random.Random(seed)
    start = time.perf_counter()
    client = ApiClient.objects.create(name="bench", key_prefix="x", key_hash=uuid.uuid4().hex, scopes=["admin"])
    subjects = Subject.objects.bulk_create(
        [Subject(client=client, user_hash=uuid.uuid4().hex, opted_out=i % 100 == 0) for i in range(20_000)]
    )
    subject_ids = [s.pk for s in subjects]
    base = timezone.now() - timedelta(days=30)
    batch = 50_000
    for offset in range(0, rows, batch):
        interactions, feedback, candidates = [], [], []
        for i in range(offset, min(rows, offset + batch)):
            topic, n = rng.choice(TOPICS), rng.randint(1, 9999)
            text = rng.choice(ASKS).format(t=topic, n=n) + (rng.choice(PII).format(n=n) if rng.random() < 0.05 else "")
            output = rng.choice(ANSWERS).format(t=topic, n=rng.randint(1, 60))
            iid = uuid.uuid4()
            created = base + timedelta(seconds=i)
            interactions.append({
                "id": iid, "client_id": client.pk, "subject_id": rng.choice(subject_ids), "task": rng.choice(["support", "support", "billing"]),
                "messages": [{"role": "user", "content": text}], "input_text": text, "output_text": output,
                "confidence": round(rng.random(), 3), "created_at": created, "updated_at": created,
            })  # fmt: skip
            roll = rng.random()
            if roll < 0.30:
                feedback.append(
                    {"interaction_id": iid, "kind": "score", "score": rng.choice([1, 2, 3, 4, 4, 5, 5, 5]), "created_at": created}
                )
            elif roll < 0.50:
                feedback.append({"interaction_id": iid, "kind": "thumb", "thumb": rng.choice(["up", "up", "down"]), "created_at": created})
            elif roll < 0.55:
                feedback.append({"interaction_id": iid, "kind": "correction", "correction": f"Corrected: {output}", "created_at": created})
            elif roll < 0.58:
                for rank in range(3):
                    candidates.append({"interaction_id": iid, "rank": rank, "text": f"Option {rank}: {output}", "created_at": created})
            elif roll < 0.60:
                feedback.append({"interaction_id": iid, "kind": "flag", "reason": "wrong", "created_at": created})
            if roll < 0.10 and rng.random() < 0.5:
                feedback.append({"interaction_id": iid, "kind": "thumb", "thumb": "up", "created_at": created})
        fast_insert(Interaction, interactions)
        fast_insert(Candidate, candidates)
        fast_insert(Feedback, feedback)
        _choices(candidates)
    return time.perf_counter() - start


def _choices(candidates: list[dict]) -> None:
    from interactions.models import Candidate, Feedback
    from learning_platform.db import fast_insert

    firsts = [c["interaction_id"] for c in candidates if c["rank"] == 0]
    ids = dict(Candidate.objects.filter(interaction_id__in=firsts, rank=0).values_list("interaction_id", "pk"))
    fast_insert(Feedback, [{"interaction_id": i, "kind": "choice", "candidate_id": pk} for i, pk in ids.items()])


def naive(limit: int) -> float:
    """A per-row ORM loop doing the same work for `limit` interactions (rolled back); rows/s."""
    from django.db import transaction

    from curation import dedup, pii, scoring
    from curation.models import TrainingExample
    from interactions.models import Interaction

    class Rollback(Exception):
        pass

    start = time.perf_counter()
    try:
        with transaction.atomic():
            for interaction in Interaction.objects.order_by("pk")[:limit]:
                if interaction.subject and interaction.subject.opted_out:
                    continue
                feedback = list(interaction.feedback.all())
                if any(f.kind == "flag" for f in feedback):
                    continue
                scores = [f.score for f in feedback if f.kind == "score"]
                thumbs = [f.thumb == "up" for f in feedback if f.kind == "thumb"]
                corrections = [f.correction for f in feedback if f.kind == "correction"]
                if not (corrections or any(s >= 4 for s in scores) or any(thumbs)):
                    continue
                target = corrections[-1] if corrections else interaction.output_text
                prompt = [{"role": m["role"], "content": pii.scrub(m["content"])[0]} for m in interaction.messages]
                clean = pii.scrub(target)[0]
                result = scoring.score(scoring.Signals(scores=scores, thumbs=thumbs, corrected=bool(corrections)), clean)
                digest = dedup.content_hash("sft", prompt[-1]["content"], clean)
                duplicate = TrainingExample.objects.filter(content_hash=digest).first()
                TrainingExample.objects.update_or_create(
                    key=f"naive:{interaction.pk}",
                    defaults={"task": interaction.task, "kind": "sft", "origin": "output", "source_interaction": interaction, "prompt": prompt,
                              "target": clean, "signals": result.breakdown, "quality_score": result.quality, "tier": result.tier,
                              "content_hash": digest, "duplicate_of": duplicate},
                )  # fmt: skip
            raise Rollback
    except Rollback:
        pass
    return limit / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=20_000)
    args = parser.parse_args()
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    prepare(url)
    os.environ.update({**ENV, "DATABASE_URL": url})
    import django

    django.setup()
    print(f"generated {args.rows:,} interactions with feedback in {generate(args.rows):.0f} s")
    naive_rate = naive(min(args.naive, args.rows))
    print(f"naive per-row ORM loop over {min(args.naive, args.rows):,} rows: {naive_rate:,.0f} rows/s")

    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "curate", "-v", "0"], cwd=ROOT, env=os.environ.copy(), stderr=subprocess.PIPE, text=True
    )
    peak_kb = 0
    while process.poll() is None:  # RSS of the command and its worker processes together
        peak_kb = max(peak_kb, tree_rss_kb(process.pid))
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if process.returncode:
        raise SystemExit(process.stderr.read()[-2000:])
    peak_mb = max(peak_kb, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    from curation.models import CurationRun

    run = CurationRun.objects.latest("pk")
    print(f"curation of {run.counts['read']:,} interactions: {wall:.0f} s wall (goal <= 300 s), peak RSS {peak_mb:,.0f} MB (goal <= 2048)")
    for stage, seconds in run.stage_seconds.items():
        rate = f"{run.counts['read'] / seconds:,.0f} interactions/s" if seconds and stage in ("load", "build", "store") else ""
        print(f"  {stage:15s} {seconds:8.1f} s  {rate}")
    print(f"  examples: {run.counts.get('examples_created', 0):,} created, {run.counts.get('duplicates_exact', 0):,} exact and "
          f"{run.counts.get('duplicates_near', 0):,} near duplicates, {run.counts.get('scrubbed', 0):,} scrubbed")  # fmt: skip
    rate = run.counts["read"] / wall
    print(f"pipeline {rate:,.0f} rows/s vs naive {naive_rate:,.0f} rows/s: {rate / naive_rate:.1f}x (goal >= 10x)")


if __name__ == "__main__":
    main()
