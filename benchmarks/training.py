#!/usr/bin/env python
"""Training benchmark, all measured in one run on the same data, model and recipe:

  1. `manage.py train` (the platform: job row, progress/heartbeat writes, callbacks) against a
     bare TRL script written here (SFTTrainer + LoRA, nothing else): tokens/s and peak RSS.
     Goal: platform overhead <= 5%.
  2. Length-grouped batching against plain padded batching: non-pad tokens/s and final loss.
     Goal: >= 1.3x non-pad tokens/s with the same loss curve.

Tokens are the non-pad tokens of the training rows (chat template applied) times epochs, so both
sides count the same work. Needs PostgreSQL: BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/lp_bench_training; dropped and recreated).
Usage: .venv/bin/python benchmarks/training.py [--rows 400] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._common import fresh_database, tree_rss_kb  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/lp_bench_training"
WORDS = [
    "the",
    "user",
    "asks",
    "about",
    "an",
    "invoice",
    "a",
    "refund",
    "the",
    "delivery",
    "date",
    "our",
    "team",
    "will",
    "check",
    "the",
    "account",
    "settings",
    "today",
]

BARE_TRL = """
import json, sys, time
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer

base, data_path, out, epochs, group = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5] == "1"
torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
targets = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)} - {"lm_head"})
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=targets, modules_to_save=["norm"], task_type="CAUSAL_LM"))
rows = [json.loads(line) for line in open(data_path)]
config = SFTConfig(output_dir=out, learning_rate=2e-3, num_train_epochs=epochs, per_device_train_batch_size=16, gradient_accumulation_steps=1,
                   warmup_steps=10, lr_scheduler_type="linear", logging_steps=5, save_strategy="no", report_to="none", disable_tqdm=True,
                   use_cpu=True, bf16=False, gradient_checkpointing=False, seed=0, data_seed=0, max_length=512, assistant_only_loss=True,
                   train_sampling_strategy="group_by_length" if group else "random")
trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
result = trainer.train()
print(json.dumps({"train_runtime": result.metrics["train_runtime"], "train_loss": result.metrics["train_loss"]}))
"""


def run_measured(command: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """stdout, wall seconds, peak RSS in MB (the process and its children)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.DEVNULL, text=True)
        peak = 0
        while process.poll() is None:
            peak = max(peak, tree_rss_kb(process.pid))
            time.sleep(0.1)
        out.seek(0)
        text = out.read()
    if process.returncode:
        raise SystemExit(f"{command[:3]} failed: {text[-2000:]}")
    return text, time.perf_counter() - start, peak / 1024


def prepare(url: str, rows: int, base_dir: Path) -> tuple[int, list[dict]]:
    fresh_database(url)
    import django

    django.setup()
    from curation.models import TrainingExample
    from curation.services import dataset_freeze_new
    from interactions.models import ApiClient, Interaction
    from training.base_models import build_base_model

    build_base_model(base_dir)
    rng = random.Random(0)
    client = ApiClient.objects.create(name="bench", key_prefix="x", key_hash="x" * 64, scopes=["admin"])
    for index in range(rows):
        # lengths vary a lot (4 to 120 words), as real traffic does: that is what padding wastes
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.choice([4, 8, 16, 40, 120])))
        target = " ".join(rng.choice(WORDS) for _ in range(rng.choice([3, 6, 12, 30])))
        interaction = Interaction.objects.create(
            client=client, task="bench", input_text=prompt, messages=[{"role": "user", "content": prompt}]
        )
        TrainingExample.objects.create(
            key=f"b{index}", task="bench", kind="sft", origin="bench", source_interaction=interaction, prompt=[{"role": "user", "content": prompt}],
            target=target, quality_score=1.0, tier="gold", content_hash=f"{index}",
        )  # fmt: skip
    dataset = dataset_freeze_new(task="bench", kind="sft", min_tier="gold", eval_ratio=0)
    from curation import exporters, selectors

    records = [exporters.messages(item) for item in selectors.dataset_items(dataset=dataset, split="train")]
    return dataset.pk, records


def count_tokens(base_dir: Path, records: list[dict]) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    return sum(len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]) for r in records)


def platform_run(dataset_id: int, epochs: int, group: bool, env: dict[str, str]) -> tuple[dict, float]:
    args = ["manage.py", "train", "--task", "bench", "--dataset", str(dataset_id), "--epochs", str(epochs), "--batch-size", "16",
            "--save-steps", "100000", "--seed", "0"] + (["--group-by-length"] if group else [])  # fmt: skip
    _, _, peak = run_measured([sys.executable, *args], env)
    from training.models import TrainingJob

    job = TrainingJob.objects.latest("pk")
    if job.status != "succeeded":
        raise SystemExit(f"job {job.pk} {job.status}: {job.error[-500:]}")
    return job.metrics, peak


def _keep_best(results: dict, key: tuple[str, bool], value: tuple[float, float, float]) -> None:
    if key not in results or value[0] < results[key][0]:
        results[key] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=2, help="rounds; the best time of each side counts")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lp-bench-training-"))
    base_dir = workdir / "base"
    env = {**os.environ, "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL), "DEBUG": "true", "LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "learning_platform.settings", "HF_HUB_OFFLINE": "1", "BASE_MODEL": str(base_dir),
           "ARTIFACTS_DIR": str(workdir / "artifacts")}  # fmt: skip
    os.environ.update(env)
    dataset_id, records = prepare(env["DATABASE_URL"], args.rows, base_dir)
    data_path = workdir / "train.jsonl"
    data_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    tokens = count_tokens(base_dir, records) * args.epochs
    print(f"{len(records)} rows, {tokens:,} non-pad tokens over {args.epochs} epochs, tiny 2.9M-parameter model, batch 16, CPU")

    results: dict[tuple[str, bool], tuple[float, float, float]] = {}
    for _ in range(args.repeat):  # interleaved rounds; the best time of each side counts (the machine is shared)
        for group in (False, True):
            metrics, peak = platform_run(dataset_id, args.epochs, group, env)
            _keep_best(results, ("platform", group), (metrics["train_runtime"], metrics["train_loss"], peak))
            bare_args = [
                sys.executable,
                "-c",
                BARE_TRL,
                str(base_dir),
                str(data_path),
                str(workdir / "bare"),
                str(args.epochs),
                "1" if group else "0",
            ]
            out, _, peak = run_measured(bare_args, env)
            bare = json.loads(out.strip().splitlines()[-1])
            _keep_best(results, ("bare", group), (bare["train_runtime"], bare["train_loss"], peak))
    for group in (False, True):
        label = "length-grouped" if group else "padded (random order)"
        (p_time, p_loss, p_rss), (b_time, b_loss, b_rss) = results[("platform", group)], results[("bare", group)]
        print(f"{label}:")
        print(f"  manage.py train  {tokens / p_time:8,.0f} tokens/s  loss {p_loss:.3f}  peak RSS {p_rss:,.0f} MB")
        print(f"  bare TRL script  {tokens / b_time:8,.0f} tokens/s  loss {b_loss:.3f}  peak RSS {b_rss:,.0f} MB")
        print(f"  platform overhead: {(p_time / b_time - 1) * 100:+.1f}% time, {(p_rss / b_rss - 1) * 100:+.1f}% RSS (goal <= 5%)")
    padded, grouped = results[("platform", False)], results[("platform", True)]
    print(f"length-grouped vs padded (platform): {padded[0] / grouped[0]:.2f}x non-pad tokens/s (goal >= 1.3x), "
          f"final loss {grouped[1]:.3f} vs {padded[1]:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
