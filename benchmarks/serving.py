#!/usr/bin/env python
"""Serving benchmark on the tiny offline model, all baselines measured in the same run:

  1. adapter switch latency p50/p95 (an adapter already loaded) — goal p95 < 50 ms;
  2. cold adapter load against reloading base + adapter from disk — goal >= 20x faster;
  3. /api/v1/generate (middleware, DRF, API key, champion look-up, interaction logging) against
     calling model.generate directly on the same prompts — goal <= 10% overhead;
  4. failed requests while the champion is swapped 100 times under load — goal 0.

Needs PostgreSQL: BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/lp_bench_serving;
dropped and recreated). Usage: .venv/bin/python benchmarks/serving.py
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._common import fresh_database  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench_serving"
PROMPTS = [f"{action} {thing} {n}" for action in ("create", "move", "share") for thing in ("file", "task") for n in (3, 17)]


def prepare(url: str, workdir: Path) -> None:
    fresh_database(url)


def make_adapters(base: Path, out: Path, count: int) -> list[Path]:
    """LoRA adapters with random (non-zero) weights: what a switch or a load costs does not
    depend on what the adapter learned."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for index in range(count):
        torch.manual_seed(index)
        model = AutoModelForCausalLM.from_pretrained(base)
        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=targets, init_lora_weights=False))
        path = out / f"adapter-{index}"
        peft_model.save_pretrained(path)
        paths.append(path)
    return paths


def percentile(values: list[float], share: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round((len(values) - 1) * share))]


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="lp-bench-serving-"))
    base = workdir / "base"
    os.environ.update({"DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), "DEBUG": "true", "LOG_LEVEL": "WARNING",
                       "DJANGO_SETTINGS_MODULE": "learning_platform.settings", "HF_HUB_OFFLINE": "1", "BASE_MODEL": str(base),
                       "ARTIFACTS_DIR": str(workdir / "artifacts"), "ALLOWED_HOSTS": "testserver,localhost"})  # fmt: skip
    prepare(os.environ["DATABASE_URL"], workdir)
    import django

    django.setup()
    from django.test import Client

    from interactions.services import api_client_create
    from registry import services
    from registry.models import ModelVersion
    from registry.serving import local
    from training.base_models import build_base_model

    build_base_model(base)
    adapters = make_adapters(base, workdir, 4)
    versions = [ModelVersion.objects.create(task="bench", name=f"tiny-bench-v{i + 1}", number=i + 1, base_model=str(base),
                                            adapter_path=str(path), status="approved") for i, path in enumerate(adapters)]  # fmt: skip
    backend = local.backend()

    # 1 + 2: switches and loads
    cold = []
    for version in versions:
        start = time.perf_counter()
        backend._use(version)
        cold.append(time.perf_counter() - start)
    switches = []
    for index in range(200):
        start = time.perf_counter()
        backend._use(versions[index % len(versions)])
        switches.append(time.perf_counter() - start)
    reloads = []
    for version in versions[:3]:
        start = time.perf_counter()
        from peft import PeftModel
        from transformers import AutoModelForCausalLM, AutoTokenizer

        AutoTokenizer.from_pretrained(base)
        PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), version.adapter_path)
        reloads.append(time.perf_counter() - start)
    cold_load = statistics.median(cold[1:])  # the first one also wraps the model in PEFT
    print(
        f"adapter switch: p50 {percentile(switches, 0.5) * 1000:.2f} ms, p95 {percentile(switches, 0.95) * 1000:.2f} ms (goal p95 < 50 ms)"
    )
    print(f"cold adapter load {cold_load * 1000:.1f} ms vs full reload of base + adapter {statistics.median(reloads) * 1000:.1f} ms: "
          f"{statistics.median(reloads) / cold_load:.1f}x (goal >= 20x)")  # fmt: skip

    # 3: the API against model.generate on the same prompts
    services.version_promote(version=versions[0], actor="bench")
    _, key = api_client_create(name="bench", scopes=["ingest"])
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}

    def api_round() -> float:
        start = time.perf_counter()
        for prompt in PROMPTS:
            response = client.post(
                "/api/v1/generate",
                json.dumps({"task": "bench", "input_text": prompt, "max_tokens": 16}),
                content_type="application/json",
                **auth,
            )
            assert response.status_code == 200, response.content
        return time.perf_counter() - start

    def direct_round() -> float:
        start = time.perf_counter()
        for prompt in PROMPTS:
            backend.generate(versions[0], [{"role": "user", "content": prompt}], max_tokens=16, temperature=0, n=1)
        return time.perf_counter() - start

    api_round(), direct_round()  # warm up
    api_times, direct_times = [], []
    for _ in range(5):  # interleaved rounds
        api_times.append(api_round())
        direct_times.append(direct_round())
    api_best, direct_best = min(api_times), min(direct_times)
    print(f"/api/v1/generate {len(PROMPTS) / api_best:.1f} req/s (p50 {api_best / len(PROMPTS) * 1000:.1f} ms) vs model.generate "
          f"{len(PROMPTS) / direct_best:.1f}/s ({direct_best / len(PROMPTS) * 1000:.1f} ms): overhead {(api_best / direct_best - 1) * 100:+.1f}% (goal <= 10%)")  # fmt: skip

    # 4: swaps under load
    failures, answers, stop = [], [], threading.Event()

    def load() -> None:
        from django.db import connection

        loader = Client()
        while not stop.is_set():
            response = loader.post(
                "/api/v1/generate",
                json.dumps({"task": "bench", "input_text": "open file 1", "max_tokens": 4}),
                content_type="application/json",
                **auth,
            )
            (answers if response.status_code == 200 else failures).append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=load) for _ in range(2)]
    for thread in threads:
        thread.start()
    for index in range(100):  # a swap, then at least one more answered request before the next swap
        seen = len(answers) + len(failures)
        services.version_promote(version=versions[1 + index % 3] if index % 2 == 0 else versions[0], actor="bench")
        while len(answers) + len(failures) <= seen:
            time.sleep(0.001)
    stop.set()
    for thread in threads:
        thread.join()
    print(f"100 promotions under load: {len(answers)} requests answered, {len(failures)} failed (goal 0)")


if __name__ == "__main__":
    main()
