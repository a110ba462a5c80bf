"""The offline base model: a tokenizer with one token per digit wherever a number stands, a
build that pretrains on generated skills, cached by the hash of its recipe, loadable with the
Auto classes."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from training.corpus import skills


def test_the_same_number_is_the_same_digit_tokens_after_a_space_a_quote_or_a_colon():
    from training.base_models import build_tokenizer

    tokenizer = build_tokenizer()

    def tokens(text: str) -> list[str]:
        return tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])

    digits = ["1", "3", "7", "5"]
    for text in ("order 1375", 'id "1375"', "id:1375", '{"id": 1375}', "(1375)"):
        found = tokens(text)
        assert [t for t in found if t.isdigit()] == digits, (text, found)
        start = found.index("1")
        assert found[start : start + 4] == digits, (text, found)
    for text in ("Refund order 48213 for Dana, amount 129.50", '{"a": [1, 2]}\n\n  two  spaces', "Ünïcode ✓ 3"):
        assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_with_separators_isolated_a_name_a_code_or_an_amount_is_the_same_tokens_wherever_it_stands():
    from training.base_models import build_tokenizer

    tokenizer = build_tokenizer(split="separators")

    def tokens(text: str) -> list[str]:
        return tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)["input_ids"])

    for value in ("Dopepa Wamohe", "A-48213", "$1,375.20", "Ünïcode ✓"):
        alone = tokens(value)
        contexts = (f"from {value}.", f'"{value}"', f"name:{value}", f'{{"x": "{value}"}}', f"({value})", f"\n{value}")
        for text in contexts:
            found = tokens(text)
            assert any(found[i : i + len(alone)] == alone for i in range(len(found))), (text, found, alone)
            assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_the_skills_corpus_is_the_same_for_the_same_seed_and_every_answer_is_in_the_prompt_or_made_of_it():
    first, again, other = skills.conversations(200, seed=3), skills.conversations(200, seed=3), skills.conversations(200, seed=4)
    assert first == again
    assert first != other
    assert all(c[-1]["role"] == "assistant" and c[-1]["content"] for c in first)
    filled = [c for c in first if "JSON with" in c[-2]["content"]]
    assert len(filled) > 30
    for conversation in filled:
        prompt, answer = conversation[-2]["content"], json.loads(conversation[-1]["content"])
        for field, value in answer.items():
            carried = f"{value:.2f}" if isinstance(value, float) else str(value)
            assert carried in prompt or f"{carried}0" in prompt or field == "action", (prompt, answer)


@pytest.mark.slow
def test_build_base_model_builds_a_loadable_chat_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "base"
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command("build_base_model", "--out", str(out), "--pretrain-steps", "3", stdout=stdout, stderr=stderr)
    assert "pretraining loss" in stdout.getvalue()
    bar = stderr.getvalue()
    assert "pretraining: 100%" in bar
    assert bar.count("\n") <= 1, "one bar redrawn in place, not a line per refresh"
    info = json.loads((out / "build_info.json").read_text())
    assert (info["pretrain_steps"], info["induction_steps"], len(info["recipe_hash"])) == (3, 1, 12)
    from training.base_models import PRETRAINED, trained_window

    assert trained_window(str(out)) == PRETRAINED.sequence_length, "what serving fits lessons into"
    assert trained_window(str(tmp_path)) is None
    assert info["pretraining"]["first_loss"] > 0
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "llama"
    assert 1_000_000 < model.num_parameters() < 10_000_000
    assert tokenizer.padding_side == "left"
    messages = [{"role": "user", "content": "create file 3"}, {"role": "assistant", "content": '{"action": "create"}'}]
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(masked) == '{"action": "create"}<|im_end|>'
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    batch = tokenizer(["a", "a longer text"], padding=True, return_tensors="pt")
    assert batch["attention_mask"][0][0] == 0, "left padding"
    output = model.generate(**tokenizer(prompt, return_tensors="pt"), max_new_tokens=3, do_sample=False)
    assert output.shape[1] > 0


def test_pretraining_sees_the_chat_template_token_for_token(tmp_path):
    """The pretraining loop tokenizes the template in pieces; they must be what SFT sees whole."""
    from training.base_models import _segments, build_tokenizer

    tokenizer = build_tokenizer()
    for conversation in skills.conversations(30, seed=5):
        whole = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
        pieces = [(tokenizer(text, add_special_tokens=False)["input_ids"], trained) for text, trained in _segments(conversation)]
        assert [t for ids, _ in pieces for t in ids] == whole["input_ids"]
        assert [int(trained) for ids, trained in pieces for _ in ids] == whole["assistant_masks"]


def test_build_base_model_refuses_a_file_as_target_and_a_negative_step_count(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CommandError, match="is a file"):
        call_command("build_base_model", "--out", str(target), "--force", "--pretrain-steps", "0")
    with pytest.raises(CommandError, match="0 or more"):
        call_command("build_base_model", "--out", str(tmp_path / "m"), "--pretrain-steps", "-1")


@pytest.mark.slow
def test_an_empty_base_model_setting_builds_once_per_recipe_and_is_reused(settings, tmp_path):
    from training.base_models import resolve_base_model

    settings.ARTIFACTS_DIR = tmp_path
    settings.BASE_MODEL = ""
    settings.BASE_MODEL_PRETRAIN_STEPS = 0
    first = resolve_base_model()
    assert first.startswith(str(tmp_path / "base"))
    assert first.endswith("/tiny-llama"), "versions are named after the folder"
    weights = tmp_path / first / "model.safetensors"
    stamp = weights.stat().st_mtime
    assert resolve_base_model() == first
    assert weights.stat().st_mtime == stamp
    settings.BASE_MODEL_PRETRAIN_STEPS = 1
    second = resolve_base_model()
    assert second != first, "another recipe builds another model"
    assert json.loads((tmp_path / second / "build_info.json").read_text())["pretrain_steps"] == 1
    settings.BASE_MODEL = "org/some-hub-model"
    assert resolve_base_model() == "org/some-hub-model"


def test_with_base_model_set_there_is_nothing_to_build_unless_an_out_folder_is_named(settings, tmp_path):
    settings.BASE_MODEL, settings.ARTIFACTS_DIR = "org/some-hub-model", tmp_path
    stdout = io.StringIO()
    call_command("build_base_model", stdout=stdout)
    assert "BASE_MODEL is org/some-hub-model: jobs start from it, nothing to build" in stdout.getvalue()
    assert not any(tmp_path.iterdir())


def test_unset_pretraining_steps_mean_the_pretrained_recipe_and_zero_the_random_one(settings):
    from training.base_models import PRETRAINED, TinyConfig, default_config

    settings.BASE_MODEL_PRETRAIN_STEPS = None
    assert default_config() == PRETRAINED
    assert PRETRAINED.pretrain_steps > 0
    assert PRETRAINED.split == "separators"
    settings.BASE_MODEL_PRETRAIN_STEPS = 0
    assert default_config() == TinyConfig()
    settings.BASE_MODEL_PRETRAIN_STEPS = 40
    assert default_config().pretrain_steps == 40
