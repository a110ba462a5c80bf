#!/usr/bin/env python
"""GPU benchmark of the platform's training path and local serving, every ratio against a baseline
measured in the same run, on the same data and model:

  Training (SFT, LoRA r=16 on every projection, through training.backends: select() + TrainSpec,
  the backends the runner calls, without the job runner):
    - the platform (trl backend, auto batch) against a bare TRL SFTTrainer script at the same
      batch (overhead; goal <= 5%), and against the backend as it landed (a bare script with fp32
      weights and the 2 x 4 recipe batch: goal for the auto-chosen recipe >= 2.5x);
    - recipe batch (2 x 4) against auto batch (training/backends/device.py auto_batch);
    - bf16 against 4-bit (QLoRA) weights; trl against unsloth (when unsloth is importable);
    - backend=auto (what select() chooses, and why).
  For each: tokens/s (the rows' non-pad tokens after the chat template, times epochs, over the
  trainer's train_runtime), peak GPU memory (torch.cuda.max_memory_allocated; peak RSS on the
  CPU) and the share of the card's dense bf16 peak. FLOPs per token: 4 x parameters, since LoRA
  computes the forward pass (2N) and the gradients of the activations (2N) but no weight
  gradient for the frozen weights (the adapters' own FLOPs and attention's sequence term are left
  out); 4-bit weights are dequantised and computed in bf16, so the same count applies.
  Serving: requests/s of the local backend (registry/serving/local.py, batching concurrent
  requests) with 1 client, 16 clients with batching off (SERVING_MAX_BATCH=1: one at a time) and
  16 clients batched (goal: >= 5x one client).

The model is a random-initialised Llama built with the project's tokenizer (training/base_models.py;
~0.98B parameters by default: hidden 2048, 19 layers, 16 heads). Each measurement runs in a process
of its own (clean peak memory; unsloth patches transformers for its whole process).

  GPU:  python benchmarks/gpu_training.py --out gpu.json
  CPU:  python benchmarks/gpu_training.py --cpu-smoke --out smoke.json   (tiny model, seconds per
        run: proves the script runs; its figures mean nothing)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Dense bf16 tensor TFLOP/s by card (no sparsity), matched in order against get_device_name().
BF16_PEAK_TFLOPS = [
    ("GH200", 989),
    ("H200", 989),
    ("H100 PCIe", 756),
    ("H100 NVL", 835),
    ("H100", 989),
    ("H800", 989),
    ("B200", 2250),
    ("A100", 312),
    ("A800", 312),
    ("L40S", 362),
    ("L40", 181),
    ("L4", 121),
    ("A10G", 70),
    ("A10", 125),
    ("A6000", 155),
    ("RTX 4090", 165),
    ("RTX 3090", 71),
]
FLOPS_CONVENTION = "4 x parameters (LoRA: forward 2N + activation gradients 2N; frozen weights: no weight gradient)"
TRL, TRL_RECIPE = "platform_trl_auto_batch", "platform_trl_recipe_batch"
TRL_4BIT = "platform_trl_4bit_auto_batch"
AUTO = "platform_backend_auto"
AS_LANDED_TOKENS_PER_S = 5626  # ML_NOTES: trl with fp32 weights, batch 2 x 4, 0.97B, one H100
WORDS = [
    *("the", "user", "asks", "about", "an", "invoice", "a", "refund", "delivery", "date"),
    *("our", "team", "will", "check", "account", "settings", "today"),
]


def peak_tflops(name: str) -> float | None:
    return next((float(tflops) for key, tflops in BF16_PEAK_TFLOPS if key.lower() in name.lower()), None)


# --- the parent: data, model, one process per measurement ------------------------------------


def build_rows(count: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def text(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))

    def row() -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": text(10, 60)}, {"role": "assistant", "content": text(25, 120)}]}

    return [row() for _ in range(count)]


def build_model(
    out: Path,
    *,
    hidden: int,
    layers: int,
    heads: int,
    intermediate: int,
    max_length: int,
) -> tuple[int, int]:
    """A random-initialised Llama with the project's tokenizer, saved in bf16; (parameters, vocab)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from training.base_models import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.model_max_length = max_length
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return int(model.num_parameters()), len(tokenizer)


def count_tokens(model_dir: Path, rows: list[dict[str, Any]], max_length: int) -> int:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = [tokenizer.apply_chat_template(row["messages"], tokenize=False) for row in rows]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return sum(min(max_length, length) for length in lengths)


def run_worker(kind: str, config: dict[str, Any], env: dict[str, str], timeout: int) -> dict[str, Any]:
    """One measurement in a fresh process; its last RESULT line, or the reason it failed."""
    command = [sys.executable, __file__, "--worker", kind, "--config", json.dumps(config)]
    started = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    results = [line[7:] for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        return {"error": f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-1500:]}"}
    return {**json.loads(results[-1]), "process_wall_s": round(time.monotonic() - started, 1)}


def ratio(results: dict[str, Any], top: str, bottom: str, field: str = "tokens_per_s") -> float | None:
    a, b = results.get(top, {}).get(field), results.get(bottom, {}).get(field)
    return round(a / b, 3) if a and b else None


def training_plan(args: argparse.Namespace) -> list[tuple[str, dict[str, Any]]]:
    """(name, config) in run order; the bare script runs after the platform, at its batch."""
    fourbit = importlib.util.find_spec("bitsandbytes") is not None
    unsloth = importlib.util.find_spec("unsloth") is not None and not args.cpu_smoke
    plan = [
        ("platform_trl_auto_batch", {"runner": "platform", "backend": "trl", "batch": "auto"}),
        ("bare_trl_same_batch", {"runner": "bare", "batch": "from:platform_trl_auto_batch"}),
        ("as_landed_fp32_recipe_batch", {"runner": "bare", "batch": "recipe", "weights": "fp32"}),
        ("platform_trl_recipe_batch", {"runner": "platform", "backend": "trl", "batch": "recipe"}),
        ("platform_backend_auto", {"runner": "platform", "backend": "auto", "batch": "auto"}),
    ]
    if fourbit:
        four = {"runner": "platform", "backend": "trl", "batch": "auto", "load_in_4bit": True}
        plan.append(("platform_trl_4bit_auto_batch", four))
    if unsloth:
        unsloth_run = {"runner": "platform", "backend": "unsloth"}
        plan.append(("platform_unsloth_auto_batch", {**unsloth_run, "batch": "auto"}))
        plan.append(("platform_unsloth_recipe_batch", {**unsloth_run, "batch": "recipe"}))
        if fourbit:
            four = {"runner": "platform", "backend": "unsloth", "batch": "auto", "load_in_4bit": True}
            plan.append(("platform_unsloth_4bit_auto_batch", four))
    return [(name, config) for name, config in plan if not args.only or name in args.only]


def main() -> None:
    args = arguments()
    if args.worker:
        work = train_worker if args.worker == "train" else serve_worker
        result = work(json.loads(args.config))
        print("RESULT " + json.dumps(result), flush=True)
        return
    if args.cpu_smoke:
        args.hidden, args.layers, args.heads, args.intermediate, args.max_length = 64, 2, 4, 128, 128
        args.rows, args.requests = min(args.rows, 32), min(args.requests, 4)
        args.max_tokens = min(args.max_tokens, 8)
    work = Path(tempfile.mkdtemp(prefix="lp-gpu-bench-"))
    model_dir, data = work / "model", work / "rows.jsonl"
    parameters, vocab = build_model(
        model_dir,
        hidden=args.hidden,
        layers=args.layers,
        heads=args.heads,
        intermediate=args.intermediate,
        max_length=args.max_length,
    )
    rows = build_rows(args.rows)
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tokens = count_tokens(model_dir, rows, args.max_length) * args.epochs
    print(f"model: {parameters / 1e9:.3f}B parameters (vocab {vocab}); {len(rows)} rows, {tokens:,} tokens")
    quiet = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    env = {**os.environ, "PYTHONPATH": str(ROOT), **quiet}
    common = {
        "model": str(model_dir),
        "data": str(data),
        "epochs": args.epochs,
        "max_length": args.max_length,
        "tokens": tokens,
        "parameters": parameters,
        "peak_tflops": args.peak_tflops,
    }
    results: dict[str, dict[str, Any]] = {}
    for name, config in training_plan(args):
        if str(config.get("batch", "")).startswith("from:"):
            config = {**config, "batch": results.get(config["batch"][5:], {}).get("batch_size") or "recipe"}
        config = {**common, **config, "out": str(work / name)}
        results[name] = run_worker("train", config, env, args.worker_timeout)
        report(name, results[name])
    serving = {}
    if not args.skip_serving:
        serve = {**common, "requests": args.requests, "max_tokens": args.max_tokens, "clients": args.clients}
        serving = run_worker("serve", serve, env, args.worker_timeout)
        report("serving", serving)
    figures = summary(args, results, serving, parameters, tokens)
    Path(args.out).write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures["ratios"], indent=2))
    print(f"figures written to {args.out}")


def report(name: str, result: dict[str, Any]) -> None:
    if "error" in result:
        print(f"{name}: FAILED {result['error']}")
        return
    keys = ("tokens_per_s", "peak_gpu_gib", "bf16_peak_share", "batch_size", "backend", "rps")
    shown = {k: result[k] for k in keys if k in result}
    print(f"{name}: {json.dumps(shown)}", flush=True)


def summary(
    args: argparse.Namespace,
    results: dict[str, Any],
    serving: dict[str, Any],
    parameters: int,
    tokens: int,
) -> dict[str, Any]:
    runs = serving.get("runs", {})

    def rps(key: str, base: str = "one_client") -> float | None:
        a, b = runs.get(key, {}).get("rps"), runs.get(base, {}).get("rps")
        return round(a / b, 3) if a and b else None

    auto = None if args.cpu_smoke else results.get(AUTO, {}).get("tokens_per_s")
    ratios = {
        "platform_vs_bare_trl (goal >= 0.95)": ratio(results, TRL, "bare_trl_same_batch"),
        "auto_chosen_vs_as_landed (goal >= 2.5)": ratio(results, AUTO, "as_landed_fp32_recipe_batch"),
        "auto_batch_vs_recipe_batch": ratio(results, "platform_trl_auto_batch", "platform_trl_recipe_batch"),
        "4bit_vs_bf16": ratio(results, "platform_trl_4bit_auto_batch", "platform_trl_auto_batch"),
        "unsloth_vs_trl_auto_batch": ratio(results, "platform_unsloth_auto_batch", "platform_trl_auto_batch"),
        "unsloth_vs_trl_recipe_batch": ratio(results, "platform_unsloth_recipe_batch", TRL_RECIPE),
        "unsloth_4bit_vs_trl_4bit": ratio(results, "platform_unsloth_4bit_auto_batch", TRL_4BIT),
        "unsloth_peak_memory_vs_trl": ratio(results, "platform_unsloth_auto_batch", TRL, "peak_gpu_gib"),
        "auto_chosen_vs_ml_notes_5626": round(auto / AS_LANDED_TOKENS_PER_S, 3) if auto else None,
        f"serving_{args.clients}_clients_batched_vs_1 (goal >= 5)": rps("many_batched"),
        f"serving_{args.clients}_clients_one_at_a_time_vs_1": rps("many_one_at_a_time"),
    }
    return {
        "mode": "cpu-smoke" if args.cpu_smoke else "full",
        "model": {
            "parameters": parameters,
            "hidden": args.hidden,
            "layers": args.layers,
            "heads": args.heads,
            "intermediate": args.intermediate,
            "max_length": args.max_length,
        },
        "data": {"rows": args.rows, "epochs": args.epochs, "tokens": tokens},
        "flops_per_token": FLOPS_CONVENTION,
        "unsloth_importable": importlib.util.find_spec("unsloth") is not None,
        "training": results,
        "serving": serving,
        "ratios": ratios,
    }


# --- the workers (each in its own process) -------------------------------------------------


def _read_rows(path: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _measure(config: dict[str, Any], train: Any) -> dict[str, Any]:
    """Run `train()` (returning the trainer's metrics), with the device's figures around it."""
    import torch

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    metrics = train()
    wall = time.perf_counter() - started
    runtime = float(metrics.get("train_runtime") or wall)
    tokens_per_s = config["tokens"] / runtime
    result: dict[str, Any] = {
        "tokens_per_s": round(tokens_per_s, 1),
        "train_runtime_s": round(runtime, 2),
        "train_wall_s": round(wall, 2),
        "train_loss": metrics.get("train_loss"),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    if cuda:
        name = torch.cuda.get_device_name()
        peak = config.get("peak_tflops") or peak_tflops(name)
        peak_gib = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result.update(device=name, peak_gpu_gib=peak_gib, bf16_peak_tflops=peak)
        if peak:
            result["bf16_peak_share"] = round(tokens_per_s * 4 * config["parameters"] / (peak * 1e12), 4)
    else:
        result["device"] = "cpu"
    return result


def _recipe(config: dict[str, Any], rows: int) -> tuple[Any, dict[str, str]]:
    """The recipe a job would run (recipes.resolve), with the batch the config asks for."""
    from training import recipes
    from training.backends import device

    recipe = replace(
        recipes.Recipe(),
        epochs=float(config["epochs"]),
        max_length=config["max_length"],
        load_in_4bit=bool(config.get("load_in_4bit")),
    )
    recipe, notes = recipes.resolve(recipe, examples=rows, parameters=config["parameters"])
    if config["batch"] == "auto":
        batch, notes["batch_size"] = device.auto_batch(
            config["parameters"],
            device.probe(),
            max_length=recipe.max_length,
            load_in_4bit=recipe.load_in_4bit,
        )
        recipe = replace(recipe, batch_size=batch, gradient_accumulation=1)
    elif isinstance(config["batch"], int):
        recipe = replace(recipe, batch_size=config["batch"], gradient_accumulation=1)
    return recipe, notes


def train_worker(config: dict[str, Any]) -> dict[str, Any]:
    rows = _read_rows(config["data"])
    recipe, notes = _recipe(config, len(rows))
    accumulation = recipe.gradient_accumulation
    shape = {"batch_size": recipe.batch_size, "gradient_accumulation": accumulation, "notes": notes}
    if config["runner"] == "bare":
        return {**_measure(config, lambda: bare_trl(config, rows, recipe)), **shape, "backend": "bare trl"}
    from training.backends import Hooks, TrainSpec, select

    backend = select(
        config["backend"],
        load_in_4bit=recipe.load_in_4bit,
        base_model=config["model"],
        max_length=recipe.max_length,
    )
    steps: list[int] = []
    spec = TrainSpec(
        method="sft",
        base_model=config["model"],
        recipe=recipe,
        train_rows=rows,
        eval_rows=[],
        output_dir=Path(config["out"]),
        hooks=Hooks(on_step=lambda step, total: steps.append(step)),
    )
    result = _measure(config, lambda: backend.train(spec).metrics)
    return {**result, **shape, "backend": backend.name, "reason": backend.reason, "steps": len(steps)}


def bare_trl(config: dict[str, Any], rows: list[dict[str, Any]], recipe: Any) -> dict[str, Any]:
    """The same training with nothing of the platform: SFTTrainer + LoRA, the recipe's numbers."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.manual_seed(recipe.seed)
    gpu = torch.cuda.is_available()
    bf16 = gpu and torch.cuda.is_bf16_supported()
    weights = torch.bfloat16 if bf16 else torch.float16
    if config.get("weights") == "fp32" or not gpu:
        weights = torch.float32
    tokenizer = AutoTokenizer.from_pretrained(config["model"])
    model = AutoModelForCausalLM.from_pretrained(config["model"], dtype=weights)
    linear = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    lora = LoraConfig(
        r=recipe.lora_rank,
        lora_alpha=recipe.lora_alpha,
        lora_dropout=recipe.lora_dropout,
        task_type="CAUSAL_LM",
        target_modules=sorted(linear - {"lm_head"}),
        modules_to_save=["norm"] if config["parameters"] < 50_000_000 else None,
    )
    model = get_peft_model(model, lora)
    args = SFTConfig(
        output_dir=config["out"],
        learning_rate=recipe.learning_rate,
        num_train_epochs=recipe.epochs,
        per_device_train_batch_size=recipe.batch_size,
        gradient_accumulation_steps=recipe.gradient_accumulation,
        warmup_steps=recipe.warmup_steps,
        lr_scheduler_type="linear",
        logging_steps=recipe.logging_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not gpu,
        bf16=bf16,
        fp16=gpu and not bf16,
        gradient_checkpointing=False,
        seed=recipe.seed,
        data_seed=recipe.seed,
        max_length=recipe.max_length,
        assistant_only_loss=True,
        packing=False,
    )
    train = Dataset.from_list(rows)
    trainer = SFTTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer)
    return dict(trainer.train().metrics)


def serve_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Requests/s of registry.serving.local.LocalBackend: 1 client, then 16 with and without batching."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "learning_platform.settings")
    os.environ.setdefault("DEBUG", "true")  # settings' development defaults; no database is touched
    import django

    django.setup()
    from registry.models import ModelVersion
    from registry.serving.local import LocalBackend

    version = ModelVersion(task="bench", name="bench-v0", number=0, base_model=config["model"])
    clients = int(config["clients"])
    backend = LocalBackend(queue_size=4 * clients, max_batch=clients, wait_ms=5)
    sampling = {"max_tokens": config["max_tokens"], "temperature": 0.0, "n": 1}
    rows = _read_rows(config["data"])

    def ask(number: int) -> None:
        backend.generate(version, rows[number % len(rows)]["messages"][:1], **sampling)

    ask(0)  # loads the model
    runs = {}
    shapes = [("one_client", 1, clients), ("many_one_at_a_time", clients, 1)]
    shapes.append(("many_batched", clients, clients))
    for key, count, max_batch in shapes:
        backend.max_batch, backend.batches = max_batch, []
        measured = _clients(ask, count, int(config["requests"]), backend)
        runs[key] = {"clients": count, "max_batch": max_batch, **measured}
    rps = runs["many_batched"]["rps"]
    return {"runs": runs, "device": backend.device, "max_tokens": config["max_tokens"], "rps": rps}


def _clients(ask: Any, clients: int, per_client: int, backend: Any) -> dict[str, Any]:
    failures: list[BaseException] = []

    def client(index: int) -> None:
        try:
            for number in range(per_client):
                ask(index * per_client + number)
        except BaseException as exc:  # reported, never hidden
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} clients failed: {failures[0]!r}")
    batches = backend.batches or [1]
    return {
        "requests": clients * per_client,
        "seconds": round(elapsed, 2),
        "rps": round(clients * per_client / elapsed, 3),
        "mean_batch": round(sum(batches) / len(batches), 2),
    }


def arguments() -> argparse.Namespace:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=raw)
    parser.add_argument("--out", type=Path, help="where to write the JSON figures")
    smoke = "a tiny model and a few steps on the CPU: checks that the script runs"
    parser.add_argument("--cpu-smoke", action="store_true", help=smoke)
    parser.add_argument("--rows", type=int, default=1200)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=19)
    parser.add_argument("--heads", type=int, default=16)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--requests", type=int, default=8, help="requests per serving client")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    peak = "the card's dense bf16 TFLOP/s, if it is not in the table"
    parser.add_argument("--peak-tflops", type=float, default=None, help=peak)
    parser.add_argument("--only", nargs="*", help="run only these training measurements (by name)")
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--worker-timeout", type=int, default=1800)
    parser.add_argument("--worker", choices=["train", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.worker and not args.out:
        parser.error("--out is required")
    return args


if __name__ == "__main__":
    main()
