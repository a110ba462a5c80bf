#!/usr/bin/env python
"""Experiment benchmark, every baseline measured in the same run:

  1. A/A simulation: 2,000 experiments of 300 trials with no real difference, looked at 30 times
     each; false-positive rate of the sequential test (statistics.always_valid_p) against a naive
     exact binomial test peeked at the same 30 looks — goal: sequential <= 5%, naive >= 20%;
  2. trials needed to decide a 0.65-vs-0.5 win rate: the sequential test checked after every
     trial (mean stopping time over 1,000 runs) against a fixed-horizon exact binomial test sized
     for 80% power at alpha 0.05 — goal: <= 1.5x;
  3. p50 latency of /api/v1/generate with a 20% shadow experiment running against none, in
     interleaved rounds (a) with the django-q2 worker paused, so only the request path is
     measured, and (b) with a worker answering the shadow trials on the same machine — goal: <= 5%.

Parts 1 and 2 are pure Python. Part 3 needs PostgreSQL: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/lp_bench_abtesting; dropped and recreated).
Usage: .venv/bin/python benchmarks/abtesting.py [--only-statistics]
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import fresh_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench_abtesting"
ALPHA = 0.05


def aa_simulation(experiments: int = 2000, trials: int = 300, looks: int = 30) -> tuple[float, float]:
    from abtesting.statistics import binomial_test, mixture_likelihood_ratio

    rng = random.Random(1)
    every = trials // looks
    sequential = naive = 0
    for _ in range(experiments):
        wins, best, naive_hit = 0, 1.0, False
        for n in range(1, trials + 1):
            wins += rng.random() < 0.5
            best = max(best, mixture_likelihood_ratio(wins, n))  # the sequential test may look after every trial
            if n % every == 0 and not naive_hit and binomial_test(wins, n) < ALPHA:
                naive_hit = True
        sequential += 1 / best < ALPHA
        naive += naive_hit
    return sequential / experiments, naive / experiments


def fixed_horizon_size(p1: float = 0.65, power: float = 0.8) -> int:
    """The smallest n whose exact two-sided binomial test at ALPHA has the given power at p1."""
    from abtesting.statistics import binomial_test

    for n in range(10, 2000):
        rejecting = [k for k in range(n + 1) if k > n / 2 and binomial_test(k, n) < ALPHA]
        if not rejecting:
            continue
        k_min = rejecting[0]
        achieved = sum(math.comb(n, k) * p1**k * (1 - p1) ** (n - k) for k in range(k_min, n + 1))
        if achieved >= power:
            return n
    raise RuntimeError("no horizon found")


def sequential_stopping(p1: float = 0.65, runs: int = 1000, cap: int = 5000, min_trials: int = 0) -> tuple[float, float, float]:
    """Mean and median trials until the sequential test rejects (checked after every trial), and
    the share of runs that decided for the challenger."""
    from abtesting.statistics import mixture_likelihood_ratio

    rng = random.Random(2)
    stops, right = [], 0
    for _ in range(runs):
        wins = 0
        for n in range(1, cap + 1):
            wins += rng.random() < p1
            if n >= min_trials and mixture_likelihood_ratio(wins, n) >= 1 / ALPHA:
                right += wins / n > 0.5
                break
        stops.append(n)
    return statistics.mean(stops), statistics.median(stops), right / runs


def latency(workdir: Path) -> None:

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    base = workdir / "base"
    os.environ.update({"DATABASE_URL": url, "DEBUG": "true", "LOG_LEVEL": "WARNING", "DJANGO_SETTINGS_MODULE": "learning_platform.settings",
                       "HF_HUB_OFFLINE": "1", "BASE_MODEL": str(base), "ARTIFACTS_DIR": str(workdir / "artifacts"),
                       "ALLOWED_HOSTS": "testserver,localhost", "AUTO_EVALUATE": "false"})  # fmt: skip
    fresh_database(url)
    import django

    django.setup()
    from django.test import Client

    from abtesting import experiments
    from abtesting.models import Experiment, Trial
    from benchmarks.serving import PROMPTS, make_adapters
    from interactions.services import api_client_create
    from registry.models import ModelVersion
    from registry.serving import champion
    from training.base_models import build_base_model

    build_base_model(base)
    (adapter,) = make_adapters(base, workdir, 1)
    champion("bench")  # the base model becomes the champion: the control
    challenger = ModelVersion.objects.create(task="bench", name="tiny-bench-v1", number=1, base_model=str(base), adapter_path=str(adapter))
    experiment = experiments.experiment_start(challenger=challenger, actor="bench", sample_rate=0.2, min_trials=10**6, max_trials=10**7)
    _, key = api_client_create(name="bench", scopes=["ingest"])
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    def round_(shadow: bool) -> list[float]:
        Experiment.objects.filter(pk=experiment.pk).update(status="running" if shadow else "stopped")
        experiments.forget_cache("bench")  # what the admin and the services do when an experiment starts or ends
        times = []
        for prompt in PROMPTS * 5:
            start = time.perf_counter()
            response = client.post("/api/v1/generate", json.dumps({"task": "bench", "input_text": prompt, "max_tokens": 16}),
                                   content_type="application/json", **auth)  # fmt: skip
            times.append(time.perf_counter() - start)
            assert response.status_code == 200, response.content
        return times

    def compare(label: str, rounds: int = 10) -> None:
        round_(False), round_(True)  # warm up
        off, on = [], []
        for _ in range(rounds):
            off += round_(False)
            on += round_(True)
        p50_off, p50_on = statistics.median(off), statistics.median(on)
        print(f"{label}: /api/v1/generate p50 {p50_on * 1000:.2f} ms with a 20% shadow experiment vs {p50_off * 1000:.2f} ms without: "
              f"{(p50_on / p50_off - 1) * 100:+.1f}% (goal <= 5%)")  # fmt: skip

    from django_q.models import OrmQ

    compare("(a) request path only, worker paused")
    queued = sum(1 for q in OrmQ.objects.all() if q.func() == "abtesting.tasks.run_trial")
    print(f"    shadow trials queued by those requests: {queued} (answered by no one yet: {Trial.objects.count()} trials)")
    env = {**os.environ, "Q_WORKERS": "1", "OMP_NUM_THREADS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        compare("(b) with a worker answering the trials on this machine (OMP_NUM_THREADS=1)")
        deadline = time.time() + 120
        while OrmQ.objects.exists() and time.time() < deadline:
            time.sleep(0.5)
        print(f"    trials recorded by the worker: {Trial.objects.count()}")
    finally:
        worker.terminate()
        worker.wait(30)


def main() -> None:
    start = time.perf_counter()
    sequential_fp, naive_fp = aa_simulation()
    print(f"A/A, 2,000 experiments x 30 looks: false positives sequential {sequential_fp:.1%} (goal <= 5%), naive peeking {naive_fp:.1%} "
          f"(goal >= 20%) [{time.perf_counter() - start:.0f} s]")  # fmt: skip
    horizon = fixed_horizon_size()
    mean, median, right = sequential_stopping()
    print(f"0.65 vs 0.5: sequential test stops after {mean:.0f} trials on average (median {median:.0f}, {right:.1%} for the challenger) vs "
          f"a fixed horizon of {horizon} trials (80% power): {mean / horizon:.2f}x (goal <= 1.5x)")  # fmt: skip
    mean_min, _, _ = sequential_stopping(min_trials=100)
    print(f"    with the default minimum of 100 trials: {mean_min:.0f} on average, {mean_min / horizon:.2f}x")
    if "--only-statistics" not in sys.argv:
        latency(Path(tempfile.mkdtemp(prefix="lp-bench-abtesting-")))


if __name__ == "__main__":
    main()
