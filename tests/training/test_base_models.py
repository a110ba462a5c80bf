"""The offline base model builds in seconds and loads back with the Auto classes."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.slow


def test_build_base_model_builds_a_loadable_chat_model(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "base"
    start = time.perf_counter()
    call_command("build_base_model", "--out", str(out), stdout=io.StringIO(), stderr=io.StringIO())
    assert time.perf_counter() - start < 60
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


def test_build_base_model_refuses_a_file_as_target(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(CommandError, match="is a file"):
        call_command("build_base_model", "--out", str(target), "--force")


def test_an_empty_base_model_setting_builds_once_and_is_reused(settings, tmp_path):
    from training.base_models import resolve_base_model

    settings.ARTIFACTS_DIR = tmp_path
    settings.BASE_MODEL = ""
    first = resolve_base_model()
    stamp = (tmp_path / "base" / "tiny-llama" / "model.safetensors").stat().st_mtime
    assert resolve_base_model() == first
    assert (tmp_path / "base" / "tiny-llama" / "model.safetensors").stat().st_mtime == stamp
    settings.BASE_MODEL = "org/some-hub-model"
    assert resolve_base_model() == "org/some-hub-model"
