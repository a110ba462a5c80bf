"""A base model that can learn: the offline model pretrained on the copying curriculum, fine-tuned
with LoRA through the platform's own job on 500 support tickets, carries each ticket's id, name
and amount into a JSON answer on held-out tickets whose values it never saw; the random-initialised
base, trained the same way on the same examples, learns the labels and copies nothing.

Measured here (2026-12-07, one thread, the recipe's 10 epochs): pretrained exact match 0.93 (label,
id and amount 1.0, name 0.93; 0.92-0.98 over training seeds 0-2), random 0.0 (labels right, every
value wrong). Deterministic for a seed, a thread count and a CPU (the build is bit for bit; another
CPU's kernels round differently: with 8 epochs one host gave 0.92, this one 0.87). The build (about
6 minutes) is cached under var/test-models by its recipe hash."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from curation.services import dataset_freeze_new
from tests.training.conftest import MODEL_CACHE, make_examples
from training import recipes, runner, services
from training.models import TrainingJob

pytestmark = pytest.mark.django_db

TASK = "tickets"
# The label follows from the complaint (a rule the model must learn); the values must be copied.
ISSUES = {
    "refund": ["I was charged {amount} twice", "please refund {amount}", "I want my {amount} back"],
    "shipping": ["my parcel worth {amount} has not arrived", "where is my order of {amount}", "the delivery for {amount} is late"],
    "access": ["I cannot log in after paying {amount}", "my password reset fails on the {amount} plan", "locked out after paying {amount}"],
    "billing": ["the invoice says {amount}, that is wrong", "why is my bill {amount}", "I was billed {amount} instead of less"],
}
# not the curriculum's syllables: held-out names are made of pieces the pretraining never joined
SYLLABLES = ["ba", "bo", "da", "do", "fe", "go", "he", "jo", "ke", "ko", "le", "lo", "mo", "ne", "pa", "pe", "ro", "so", "te", "ve", "wa"]


def _name(rng: random.Random) -> str:
    return " ".join("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).title() for _ in range(2))


def ticket(rng: random.Random) -> tuple[str, str, tuple[str, str, str]]:
    """(ticket text, expected JSON answer, the carried values): id like A-48213, amount like $1,375.20."""
    label = rng.choice(list(ISSUES))
    ticket_id, name = f"{rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}-{rng.randint(10000, 99999)}", _name(rng)
    amount = f"${rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}"
    issue = rng.choice(ISSUES[label]).format(amount=amount)
    text = rng.choice([f"Ticket {ticket_id} from {name}: {issue}.", f"{name} wrote (ticket {ticket_id}): {issue}."])
    return text, json.dumps({"label": label, "id": ticket_id, "name": name, "amount": amount}), (ticket_id, name, amount)


def tickets(count: int, seed: int, unseen: set[str] | None = None) -> list[dict]:
    """`count` tickets; none carries a value in `unseen` (held-out values the model never saw)."""
    rng, rows, seen = random.Random(seed), [], set(unseen or ())
    while len(rows) < count:
        text, target, values = ticket(rng)
        if not seen.intersection(values):
            rows.append({"prompt": text, "target": target, "values": values})
    return rows


def answers(base_dir: Path, adapter_dir: Path, rows: list[dict]) -> list[str]:
    """Greedy answers of base + adapter, with a budget well past the longest expected answer."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_dir), str(adapter_dir))
    chats = [[{"role": "user", "content": row["prompt"]}] for row in rows]
    prompts = [tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True) for chat in chats]
    encoded = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    output = model.generate(
        **encoded, max_new_tokens=128, do_sample=False,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return [text.strip() for text in tokenizer.batch_decode(output[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)]


def scores(texts: list[str], rows: list[dict]) -> dict[str, float]:
    """Exact match of the whole answer, and the share of each field answered exactly."""
    fields = {"label": 0, "id": 0, "name": 0, "amount": 0}
    for text, row in zip(texts, rows, strict=True):
        try:
            answer = json.loads(text)
        except ValueError:
            continue
        expected = json.loads(row["target"])
        for field in fields:
            fields[field] += isinstance(answer, dict) and answer.get(field) == expected[field]
    exact = sum(text == row["target"] for text, row in zip(texts, rows, strict=True))
    return {"exact": exact / len(rows), **{field: count / len(rows) for field, count in fields.items()}}


@pytest.fixture(scope="session")
def pretrained_base_dir() -> Path:
    from training.base_models import PRETRAINED, ensure_built

    return ensure_built(MODEL_CACHE, PRETRAINED)


def fine_tune(base_dir: Path, task: str, rows: list[dict]) -> TrainingJob:
    """The platform's job, with the recipe it picks for a pretrained tiny base, on a frozen dataset
    of `rows` (a task per base: both bases are named tiny-llama, and so would be their versions)."""
    make_examples("sft", [{"prompt": r["prompt"], "target": r["target"]} for r in rows], task=task)
    dataset = dataset_freeze_new(task=task, kind="sft", min_tier="bronze", eval_ratio=0.0, seed=0)
    assert dataset.stats["splits"]["train"] == len(rows)
    open_choices, _ = recipes.resolve(
        recipes.Recipe(), examples=len(rows), parameters=services.model_parameters(str(base_dir)) or 0, pretrained=True
    )
    chosen = {"learning_rate": open_choices.learning_rate, "epochs": open_choices.epochs}
    job = services.job_create(task=task, dataset_id=dataset.pk, base_model=str(base_dir), recipe=chosen)
    job = runner.job_execute(job_id=job.pk)
    assert job.status == "succeeded", job.error
    return job


@pytest.mark.slow
@pytest.mark.learning
def test_the_pretrained_base_learns_to_carry_ids_and_amounts_into_json_and_the_random_base_does_not(
    training_settings, base_model_dir, pretrained_base_dir
):
    from training.base_models import is_pretrained

    assert is_pretrained(str(pretrained_base_dir))
    assert not is_pretrained(str(base_model_dir))
    train = tickets(500, seed=0)
    held_out = tickets(60, seed=1, unseen={value for row in train for value in row["values"]})
    pretrained = fine_tune(pretrained_base_dir, TASK, train)
    random_init = fine_tune(base_model_dir, f"{TASK}-scratch", train)
    assert pretrained.recipe == random_init.recipe, "the same recipe on both bases"
    learned = scores(answers(pretrained_base_dir, Path(pretrained.adapter_path), held_out), held_out)
    scratch = scores(answers(base_model_dir, Path(random_init.adapter_path), held_out), held_out)
    print(f"held-out scores: pretrained base {learned}, random base {scratch}")
    assert scratch["exact"] < 0.2
    assert scratch["id"] + scratch["amount"] < 0.2, "the random base does not copy values"
    assert learned["exact"] >= 0.9, learned
    assert min(learned["label"], learned["id"], learned["amount"], learned["name"]) >= 0.9, learned


def test_a_pretrained_tiny_base_gets_fewer_epochs_than_a_random_one_and_the_job_says_why():
    pretrained, notes = recipes.resolve(recipes.Recipe(), examples=500, parameters=2_000_000, pretrained=True)
    scratch, scratch_notes = recipes.resolve(recipes.Recipe(), examples=500, parameters=2_000_000)
    assert (pretrained.learning_rate, pretrained.epochs) == (2e-3, recipes.TINY_PRETRAINED_EPOCHS)
    assert (scratch.learning_rate, scratch.epochs) == (2e-3, 30.0)
    assert "pretrained" in notes["epochs"]
    assert "random-initialised" in scratch_notes["epochs"]
    real, _ = recipes.resolve(recipes.Recipe(), examples=500, parameters=500_000_000, pretrained=True)
    assert (real.learning_rate, real.epochs) == (2e-4, 3.0)
