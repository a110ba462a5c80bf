from __future__ import annotations

import json
import random
import uuid
from pathlib import Path

import pytest

from curation.models import TrainingExample
from curation.services import dataset_freeze_new
from interactions.models import Interaction
from tests.factories import ApiClientFactory

ACTIONS = ["create", "delete", "move", "rename", "open", "close", "archive", "share"]
THINGS = ["file", "folder", "task", "note", "event", "ticket"]


def command(rng: random.Random) -> tuple[str, str]:
    action, thing, number = rng.choice(ACTIONS), rng.choice(THINGS), rng.randint(1, 99)
    return f"{action} {thing} {number}", json.dumps({"action": action, "object": thing, "id": number})


# built once per recipe (its hash names the folder) and shared by every test session after it
MODEL_CACHE = Path(__file__).resolve().parents[2] / "var" / "test-models"


@pytest.fixture(scope="session")
def base_model_dir() -> Path:
    from training.base_models import TinyConfig, ensure_built

    return ensure_built(MODEL_CACHE, TinyConfig())


@pytest.fixture
def training_settings(settings, base_model_dir, tmp_path):
    settings.BASE_MODEL = str(base_model_dir)
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    return settings


def make_examples(kind: str, rows: list[dict], task: str = "commands") -> None:
    """Examples straight into the table (curation is tested elsewhere), one interaction each."""
    client = ApiClientFactory(scopes=["admin"])
    for row in rows:
        interaction = Interaction.objects.create(
            client=client, task=task, input_text=row["prompt"], messages=[{"role": "user", "content": row["prompt"]}]
        )
        TrainingExample.objects.create(
            key=f"{interaction.pk}:{kind}:{uuid.uuid4().hex[:6]}", task=task, kind=kind, origin="test", source_interaction=interaction,
            prompt=[{"role": "user", "content": row["prompt"]}], target=row["target"], rejected=row.get("rejected", ""),
            label=row.get("label"), quality_score=1.0, tier="gold", content_hash=uuid.uuid4().hex,
        )  # fmt: skip


def sft_dataset(count: int = 300, eval_ratio: float = 0.12, seed: int = 0):
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        prompt, target = command(rng)
        rows.append({"prompt": prompt, "target": target})
    make_examples("sft", rows)
    return dataset_freeze_new(task="commands", kind="sft", min_tier="bronze", eval_ratio=eval_ratio, seed=seed)


def preference_dataset(count: int = 120, seed: int = 1):
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        prompt, target = command(rng)
        wrong = json.dumps({"action": rng.choice(ACTIONS), "object": "unknown", "id": 0})
        rows.append({"prompt": prompt, "target": target, "rejected": wrong})
    make_examples("preference", rows)
    return dataset_freeze_new(task="commands", kind="preference", min_tier="bronze", eval_ratio=0.15, seed=seed)


def binary_dataset(count: int = 80, seed: int = 2):
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        prompt, target = command(rng)
        good = index % 4 != 0  # 3:1 imbalanced
        rows.append({"prompt": prompt, "target": target if good else "I don't know.", "label": good})
    make_examples("binary", rows)
    return dataset_freeze_new(task="commands", kind="binary", min_tier="bronze", eval_ratio=0.1, seed=seed)


def exact_match(adapter_dir, base_dir, dataset) -> float:
    """Greedy generation on the eval split: the share of answers equal to the target."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from curation.models import DatasetItem

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    items = list(DatasetItem.objects.filter(dataset=dataset, split="eval").values("prompt", "target"))
    prompts = [tokenizer.apply_chat_template(i["prompt"], tokenize=False, add_generation_prompt=True) for i in items]
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    output = model.generate(
        **encoded, max_new_tokens=40, do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    answers = tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
    return sum(a.strip() == i["target"] for a, i in zip(answers, items, strict=True)) / len(items)
