"""Recipes are checked at the door: every field's type and range, unknown keys refused, with
field messages (HTTP 400) and one readable line from `manage.py train`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.training.conftest import sft_dataset
from training import recipes
from training.models import TrainingJob

SEED_MAX = 2**31 - 1

BAD = [
    ({"warmup_steps": "x"}, "warmup_steps", "Must be an integer from 0 to 1,000,000."),
    ({"warmup_steps": -1}, "warmup_steps", "Must be at least 0."),
    ({"epochs": 1e300}, "epochs", "Must be at most 1,000."),
    ({"epochs": 0}, "epochs", "Must be above 0."),
    ({"epochs": "3"}, "epochs", "Must be a number above 0 and at most 1,000."),
    ({"seed": 2**62}, "seed", "Must be at most 2,147,483,647."),
    ({"seed": -1}, "seed", "Must be at least 0."),
    ({"seed": 1.5}, "seed", "Must be an integer from 0 to 2,147,483,647."),
    ({"learning_rate": 1}, "learning_rate", "Must be below 1."),
    ({"learning_rate": 0}, "learning_rate", "Must be above 0."),
    ({"learning_rate": float("inf")}, "learning_rate", "Must be a number above 0 and below 1."),
    ({"learning_rate": float("nan")}, "learning_rate", "Must be a number above 0 and below 1."),
    ({"batch_size": 4097}, "batch_size", "Must be at most 4,096."),
    ({"batch_size": 0}, "batch_size", "Must be a positive integer."),
    ({"lora_rank": 1025}, "lora_rank", "Must be at most 1,024."),
    ({"lora_rank": True}, "lora_rank", "Must be an integer from 1 to 1,024."),
    ({"lora_rank": None}, "lora_rank", "Must be an integer from 1 to 1,024, not null."),
    ({"lora_alpha": 0}, "lora_alpha", "Must be a positive integer."),
    ({"lora_dropout": 1}, "lora_dropout", "Must be below 1."),
    ({"gradient_accumulation": 2000}, "gradient_accumulation", "Must be at most 1,024."),
    ({"max_length": 10**9}, "max_length", "Must be at most 131,072."),
    ({"save_steps": 0}, "save_steps", "Must be a positive integer."),
    ({"logging_steps": "5"}, "logging_steps", "Must be an integer from 1 to 1,000,000."),
    ({"beta": 0}, "beta", "Must be above 0."),
    ({"load_in_4bit": 1}, "load_in_4bit", "Must be true or false."),
    ({"group_by_length": "yes"}, "group_by_length", "Must be true or false."),
    ({"target_modules": "q_proj"}, "target_modules", "Must be a list of 1 to 64 module names."),
    ({"target_modules": ["q_proj", 3]}, "target_modules", "Must be a list of module names."),
    ({"colour": "blue"}, "colour", "Unknown recipe field."),
]


@pytest.mark.parametrize(("recipe", "field", "message"), BAD, ids=[f"{b[1]}={b[0][b[1]]!r}" for b in BAD])
def test_a_bad_recipe_field_is_refused_with_its_message(recipe, field, message):
    with pytest.raises(recipes.RecipeError) as refused:
        recipes.parse(recipe)
    assert refused.value.errors == {field: [message]}


def test_a_recipe_at_its_limits_is_accepted():
    recipe = recipes.parse(
        {"seed": SEED_MAX, "epochs": 1000, "learning_rate": 0.5, "batch_size": 4096, "lora_rank": 1024, "warmup_steps": 0,
         "lora_dropout": 0, "load_in_4bit": False, "group_by_length": True, "target_modules": ["q_proj"], "gradient_accumulation": None}
    )  # fmt: skip
    assert (recipe.seed, recipe.epochs, recipe.target_modules, recipe.group_by_length) == (SEED_MAX, 1000, ("q_proj",), True)
    assert recipes.parse(None) == recipes.Recipe()


@pytest.mark.django_db
def test_the_api_answers_400_with_every_bad_field_and_starts_nothing(make_api):
    api = make_api(scopes=("admin",))
    recipe = {"warmup_steps": "x", "epochs": 1e300, "seed": 2**62, "load_in_4bit": "yes", "colour": 1}
    response = api.post("/api/v1/training/jobs", {"task": "commands", "recipe": recipe}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The recipe is invalid.",
        "code": "invalid",
        "errors": {
            "recipe.warmup_steps": ["Must be an integer from 0 to 1,000,000."],
            "recipe.epochs": ["Must be at most 1,000."],
            "recipe.seed": ["Must be at most 2,147,483,647."],
            "recipe.load_in_4bit": ["Must be true or false."],
            "recipe.colour": ["Unknown recipe field."],
        },
    }
    assert not TrainingJob.objects.exists()


@pytest.mark.django_db
def test_the_api_stores_a_recipe_at_its_limits(training_settings, make_api):
    sft_dataset(count=20)
    api = make_api(scopes=("admin",))
    recipe = {"seed": SEED_MAX, "epochs": 1000, "learning_rate": 0.5, "warmup_steps": 0, "load_in_4bit": False}
    response = api.post("/api/v1/training/jobs", {"task": "commands", "recipe": recipe}, format="json")
    assert response.status_code == 201, response.json()
    job = TrainingJob.objects.get()
    assert (job.seed, job.recipe["epochs"], job.recipe["learning_rate"]) == (SEED_MAX, 1000, 0.5)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("option", "value", "line"),
    [
        ("--seed", str(2**62), "--seed: Must be at most 2,147,483,647."),
        ("--epochs", "1e300", "--epochs: Must be at most 1,000."),
        ("--epochs", "nan", "--epochs: Must be a number above 0 and at most 1,000."),
        ("--learning-rate", "2", "--learning-rate: Must be below 1."),
        ("--batch-size", "0", "--batch-size: Must be a positive integer."),
        ("--lora-rank", "5000", "--lora-rank: Must be at most 1,024."),
    ],
)
def test_the_command_refuses_a_bad_option_in_one_line(option, value, line):
    with pytest.raises(CommandError) as refused:
        call_command("train", "--task", "commands", option, value, stdout=io.StringIO(), stderr=io.StringIO())
    assert str(refused.value) == line
    assert not TrainingJob.objects.exists()
