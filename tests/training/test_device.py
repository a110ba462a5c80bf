"""The device model behind GPU-aware recipes: precision, backend choice and batch size from free
memory. Pure functions of the device's figures, so a CPU checks the arithmetic a GPU relies on."""

from __future__ import annotations

import pytest

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
