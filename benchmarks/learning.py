#!/usr/bin/env python
"""The whole loop on a generated task, through the public doors, as an application would use it.

A hidden support task (a ticket in, a small JSON answer out: a label chosen by a rule, and the
ticket's id, name and amount carried over) is served by the champion through POST
/api/v1/generate; simulated users answer each reply with a thumb up when it is right and a
correction when it is wrong (POST .../feedback). Then the documented schedules run now
(`manage.py run_schedule daily-curation`, `weekly-training`): curation, a frozen dataset, a LoRA
job, registration, the arena, an experiment (replayed corrected interactions and live shadow
trials), and the approval through POST /api/v1/experiments/{id}/approve. Held-out tickets, whose
values no training ticket carries, are answered by the served model before and after.

Prints: held-out exact match (and per field) of the served model before and after, the feedback
events used, the version that serves at the end, and the wall time of each stage.

Needs PostgreSQL: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/lp_bench_learning; the
database is dropped and recreated). The base model is the platform's default (the pretrained
offline model, built once under ARTIFACTS_DIR: default var/bench-learning, kept between runs);
`--pretrain-steps 0` runs the same loop on the random-initialised base for comparison.
Usage: .venv/bin/python benchmarks/learning.py [--requests 600] [--held-out 60] [--pretrain-steps N]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rest_framework.test import APIClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import fresh_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench_learning"
TASK = "support"


def environment(url: str, artifacts: Path, pretrain_steps: int | None) -> dict[str, str]:
    env = {
        "DATABASE_URL": url, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "learning_platform.settings",
        "ARTIFACTS_DIR": str(artifacts), "BASE_MODEL": "", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "Q_SYNC": "true",  # queued work (trials, the arena, the job) runs as a worker would, in order
        "AUTO_EVALUATE": "true", "API_THROTTLE_INGEST": "off", "API_THROTTLE_READ": "off",
        "API_THROTTLE_ADMIN": "off", "API_THROTTLE_GENERATION_TOKENS": "off",
    }  # fmt: skip
    if pretrain_steps is not None:
        env["BASE_MODEL_PRETRAIN_STEPS"] = str(pretrain_steps)
    return env


class Loop:
    """The application and its users, through the API and the management commands."""

    def __init__(self, api: APIClient) -> None:
        self.api = api
        self.feedback = {"thumb_up": 0, "correction": 0}

    def post(self, path: str, body: dict, status: int) -> dict:
        answer = self.api.post(path, body, format="json")
        assert answer.status_code == status, (path, answer.status_code, answer.content[:500])
        return answer.json()

    def generate(self, prompt: str) -> dict:
        return self.post("/api/v1/generate", {"task": TASK, "input_text": prompt, "max_tokens": 128}, 200)

    def held_out(self, rows: list[dict]) -> dict[str, object]:
        """Exact match and per field, and how the answers were made (lessons: none, few-shot, recall)."""
        from interactions.models import Interaction
        from tests.training.test_learning import scores

        answers = [self.generate(row["prompt"]) for row in rows]
        made = Interaction.objects.filter(pk__in=[a["interaction_id"] for a in answers])
        modes = Counter(made.values_list("metadata__lessons__mode", flat=True))
        found = scores([a["texts"][0].strip() for a in answers], rows)
        return {**{k: round(v, 3) for k, v in found.items()}, "lessons": dict(modes)}

    def serve_with_feedback(self, rows: list[dict]) -> int:
        """Each ticket served; its user confirms a right answer and corrects a wrong one."""
        right = 0
        for row in rows:
            answer = self.generate(row["prompt"])
            url = f"/api/v1/interactions/{answer['interaction_id']}/feedback"
            if answer["texts"][0].strip() == row["target"]:
                right += 1
                self.post(url, {"kind": "thumb", "thumb": "up"}, 201)
                self.feedback["thumb_up"] += 1
            else:
                self.post(url, {"kind": "correction", "correction": row["target"]}, 201)
                self.feedback["correction"] += 1
        return right


def run_schedule(name: str) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("run_schedule", name, stdout=out)
    return out.getvalue().strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=600, help="tickets served, each with its user's feedback")
    parser.add_argument("--held-out", type=int, default=60)
    parser.add_argument("--pretrain-steps", type=int, default=None, help="0: the random-initialised base")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "var" / "bench-learning")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", DEFAULT_URL)
    os.environ.update(environment(url, args.artifacts, args.pretrain_steps))
    fresh_database(url, dict(os.environ))
    import django

    django.setup()
    from rest_framework.test import APIClient

    from abtesting.models import Experiment
    from interactions.services import api_client_create
    from registry.models import ActiveModel
    from tests.training.test_learning import tickets
    from training.base_models import resolve_base_model

    times: dict[str, float] = {}
    start = time.perf_counter()
    base = resolve_base_model()  # built on first use (minutes for the pretrained base, once)
    times["base model"] = time.perf_counter() - start
    _client, key = api_client_create(name="bench-learning", scopes=["ingest", "read", "admin"])
    api = APIClient(SERVER_NAME="localhost")
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    loop = Loop(api)
    traffic = tickets(args.requests, seed=0)
    held_out = tickets(args.held_out, seed=1, unseen={value for row in traffic for value in row["values"]})
    # the application logged its traffic before: the task is known, the base model serves it
    loop.post("/api/v1/interactions", {"task": TASK, "input_text": traffic[0]["prompt"]}, 201)

    stage = time.perf_counter()
    before = loop.held_out(held_out)
    times["held-out before"] = time.perf_counter() - stage
    stage = time.perf_counter()
    right = loop.serve_with_feedback(traffic)
    times["serve + feedback"] = time.perf_counter() - stage
    stage = time.perf_counter()
    curated = run_schedule("daily-curation")
    times["curate"] = time.perf_counter() - stage
    stage = time.perf_counter()
    # freeze, train, register, arena, experiment with replays (queued work runs inline)
    trained = run_schedule("weekly-training")
    times["train + arena + replays"] = time.perf_counter() - stage

    stage = time.perf_counter()
    experiment = Experiment.objects.filter(challenger__task=TASK).order_by("-pk").first()
    extra = 0
    while experiment is not None and experiment.status == "running" and extra < 10 * args.requests:
        batch = tickets(50, seed=100 + extra, unseen={value for row in held_out for value in row["values"]})
        loop.serve_with_feedback(batch)  # live shadow trials with ground truth from the corrections
        extra += len(batch)
        experiment.refresh_from_db()
    if experiment is not None and experiment.status == "awaiting_approval":
        loop.post(f"/api/v1/experiments/{experiment.pk}/approve", {"reason": "benchmark"}, 200)
        experiment.refresh_from_db()
    times["experiment + approval"] = time.perf_counter() - stage
    stage = time.perf_counter()
    after = loop.held_out(held_out)
    times["held-out after"] = time.perf_counter() - stage
    times["whole loop"] = time.perf_counter() - start

    champion = ActiveModel.objects.select_related("version").get(task=TASK).version
    print(f"base model: {base}")
    print(f"served {args.requests} tickets (+{extra} while the experiment ran), {right} right before training")
    print(f"feedback events used: {sum(loop.feedback.values())} {loop.feedback}")
    print(f"daily-curation: {curated}")
    print(f"weekly-training: {trained}")
    if experiment is not None:
        keys = ("trials", "replayed", "wins", "losses", "win_rate", "p_value")
        stats = {key: experiment.stats.get(key) for key in keys}
        decided = experiment.decision or experiment.reason
        print(f"experiment {experiment.pk}: {experiment.status} ({decided}) {stats}")
    print(f"served at the end: {champion.name}")
    print(f"held-out exact match of the served model ({args.held_out} tickets, unseen values):")
    print(f"  before: {json.dumps(before)}")
    print(f"  after:  {json.dumps(after)}")
    print("wall time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in times.items()))


if __name__ == "__main__":
    random.seed(0)
    main()
