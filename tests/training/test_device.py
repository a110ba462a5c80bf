"""The device model behind GPU-aware recipes: precision, backend choice and batch size from free
memory. Pure functions of the device's figures, so a CPU checks the arithmetic a GPU relies on."""

from __future__ import annotations

import pytest

from training import recipes
from training.backends import device
from training.backends.device import GIB, Device

H100 = Device("cuda", "NVIDIA H100 80GB HBM3", free_bytes=79 * GIB, total_bytes=80 * GIB, bf16=True)
T4 = Device("cuda", "Tesla T4", free_bytes=14 * GIB, total_bytes=15 * GIB, bf16=False)
CPU = Device("cpu", "cpu", 0, 0, bf16=False)
ONE_B = 970_000_000


@pytest.mark.parametrize(("rows", "measured_gib"), [(8, 10.2), (48, 50.9)])
def test_the_memory_model_matches_what_an_h100_measured(rows, measured_gib):
    estimate = device.memory_needed(ONE_B, rows=rows, max_length=512, load_in_4bit=False, dtype="bf16") / GIB
    assert estimate == pytest.approx(measured_gib, rel=0.15)


def test_weights_are_bf16_on_a_gpu_with_bf16_fp16_without_and_fp32_on_the_cpu():
    assert [device.weight_dtype(d) for d in (H100, T4, CPU)] == ["bf16", "fp16", "fp32"]


def test_auto_batch_fills_a_big_gpu_and_shrinks_on_a_small_one():
    big, reason = device.auto_batch(ONE_B, H100, max_length=512, load_in_4bit=False)
    small, _ = device.auto_batch(ONE_B, T4, max_length=512, load_in_4bit=False)
    quantized, _ = device.auto_batch(ONE_B, T4, max_length=512, load_in_4bit=True)
    assert big == 64
    assert small == 8
    assert quantized >= small
    assert "GiB free on NVIDIA H100" in reason
    assert "auto_find_batch_size" in reason


def test_auto_batch_never_goes_below_one_row():
    batch, _ = device.auto_batch(70_000_000_000, T4, max_length=4096, load_in_4bit=False)
    assert batch == 1


def test_auto_prefers_trl_where_it_fits_and_unsloth_only_where_it_does_not():
    fits = device.choose_backend("auto", ONE_B, H100, max_length=512, load_in_4bit=False, has_unsloth=True)
    too_big = device.choose_backend("auto", 8_000_000_000, T4, max_length=2048, load_in_4bit=False, has_unsloth=True)
    no_unsloth = device.choose_backend("auto", 8_000_000_000, T4, max_length=2048, load_in_4bit=False, has_unsloth=False)
    assert fits[0] == "trl"
    assert "0.44-0.66x" in fits[1]
    assert too_big[0] == "unsloth"
    assert "GiB is free" in too_big[1]
    assert no_unsloth[0] == "trl"
    assert "not installed" in no_unsloth[1]
    assert device.choose_backend("auto", ONE_B, CPU, max_length=512, load_in_4bit=False)[0] == "trl"
    assert device.choose_backend("unsloth", ONE_B, H100, max_length=512, load_in_4bit=False) == ("unsloth", "unsloth: asked for")


def test_parameters_are_counted_from_the_config_without_loading_weights(base_model_dir):
    assert 2_000_000 < device.count_parameters(str(base_model_dir)) < 4_000_000


def test_the_training_process_sizes_an_open_batch_on_a_gpu_and_leaves_the_cpu_recipe_alone():
    open_batch, _ = recipes.resolve(recipes.parse({}), examples=5000, parameters=ONE_B)
    assert (open_batch.batch_size, open_batch.gradient_accumulation, open_batch.auto_batch_size) == (2, 4, True)
    on_gpu, notes = device.finalize(open_batch, ONE_B, H100, rows=5000, processes=1)
    assert (on_gpu.batch_size, on_gpu.gradient_accumulation) == (64, 1)
    assert notes["batch_size"].startswith("64 x 1 accumulation: 64 rows a step: estimated")
    assert "auto_find_batch_size" in notes["batch_size"]
    assert device.finalize(open_batch, ONE_B, CPU, rows=5000, processes=1) == (open_batch, {})
    tiny, _ = recipes.resolve(recipes.parse({}), examples=300, parameters=2_700_000)
    assert (tiny.batch_size, tiny.gradient_accumulation, tiny.auto_batch_size) == (16, 1, False)
    assert device.finalize(tiny, 2_700_000, H100, rows=300, processes=1) == (tiny, {})


def test_a_batch_set_in_the_recipe_is_kept_on_a_gpu():
    chosen, _ = recipes.resolve(recipes.parse({"batch_size": 4}), examples=5000, parameters=ONE_B)
    assert chosen.auto_batch_size is False
    assert device.finalize(chosen, ONE_B, H100, rows=5000, processes=1)[0] == chosen


def test_an_automatic_batch_leaves_a_small_dataset_some_steps_and_agrees_across_processes():
    open_batch, _ = recipes.resolve(recipes.parse({}), examples=300, parameters=ONE_B)
    recipe, notes = device.finalize(open_batch, ONE_B, H100, rows=300, processes=2)
    assert recipe.batch_size == 16  # 300 rows / (2 processes x 8 steps) -> 16, not the 64 that fit
    assert "capped at 16 so that 300 rows still make 8 steps an epoch" in notes["batch_size"]
    assert "fixed (several processes)" in notes["batch_size"]
    assert notes["processes"] == "2 processes (TRAINING_PROCESSES), 16 rows each: 32 rows a step"
