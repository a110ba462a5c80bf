"""Each export loads with `datasets` and has the columns and types TRL's trainers read."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from curation.services import dataset_freeze_new
from tests.curation.test_pipeline import curate

pytestmark = pytest.mark.django_db

MESSAGE = {"role": "string", "content": "string"}


def _features(feature) -> object:
    """datasets Features as plain values: 'string', 'bool', [item], {name: ...}."""
    from datasets import Features, List, Value

    if isinstance(feature, Value):
        return feature.dtype
    if isinstance(feature, List):
        return [_features(feature.feature)]
    if isinstance(feature, dict | Features):
        return {name: _features(inner) for name, inner in feature.items()}
    raise AssertionError(type(feature))


def _load(dataset, fmt, tmp_path):
    from datasets import load_dataset

    path = tmp_path / f"{fmt}.jsonl"
    call_command("export_dataset", str(dataset.pk), "--format", fmt, "--split", "all", "--out", str(path), stderr=io.StringIO())
    loaded = load_dataset("json", data_files=str(path), split="train")
    assert len(loaded) == dataset.stats["count"]
    return loaded


@pytest.fixture
def datasets_by_kind(mix):
    curate()
    return {kind: dataset_freeze_new(task="support", kind=kind, min_tier="bronze") for kind in ("sft", "preference", "binary")}


@pytest.mark.slow
def test_exports_have_the_columns_and_types_trl_expects(datasets_by_kind, tmp_path):
    from trl.data_utils import is_conversational, is_conversational_from_value

    expected = {
        ("sft", "messages"): {"messages": [MESSAGE]},
        ("sft", "alpaca"): {"instruction": "string", "input": "string", "output": "string"},
        ("sft", "sharegpt"): {"conversations": [{"from": "string", "value": "string"}]},
        ("sft", "prompt_completion"): {"prompt": "string", "completion": "string"},
        ("preference", "dpo"): {"prompt": [MESSAGE], "chosen": [MESSAGE], "rejected": [MESSAGE]},
        ("binary", "kto"): {"prompt": [MESSAGE], "completion": [MESSAGE], "label": "bool"},
    }
    for (kind, fmt), features in expected.items():
        loaded = _load(datasets_by_kind[kind], fmt, tmp_path)
        assert _features(loaded.features) == features, fmt
        row = loaded[0]
        if fmt in ("messages", "dpo", "kto"):
            assert is_conversational(row), fmt
            assert row[next(iter(features))][-1]["role"] in ("user", "assistant")
        if fmt == "sharegpt":
            assert is_conversational_from_value(row)
    kto = _load(datasets_by_kind["binary"], "kto", tmp_path)
    assert set(kto["label"]) == {True, False}
    sft = _load(datasets_by_kind["sft"], "messages", tmp_path)
    assert all(conversation[-1]["role"] == "assistant" for conversation in sft["messages"])
