"""Each export loads with `datasets` and has the columns and types TRL's trainers read."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from curation.models import TrainingExample
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


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_export_piped_into_head_ends_quietly(mix):
    """`export_dataset ... --out - | head -n 1`: once head has its line and exits, the export
    stops with SIGPIPE's status and no traceback (the rows written exceed any pipe buffer)."""
    import json
    import os
    import subprocess
    import sys
    import tempfile

    from tests.test_run_platform import ROOT, _database_url

    curate()
    long_answer = "Open Settings, then Security, then Reset password. " * 6000  # 300 kB a row
    TrainingExample.objects.filter(kind="sft").update(target=long_answer)
    dataset = dataset_freeze_new(task="support", kind="sft", min_tier="bronze")
    env = {**os.environ, "DATABASE_URL": _database_url(), "DEBUG": "true"}
    command = [sys.executable, "manage.py", "export_dataset", str(dataset.pk), "--out", "-", "--split", "all"]
    with tempfile.TemporaryFile() as errors:
        export = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=errors)
        head = subprocess.run(["head", "-n", "1"], stdin=export.stdout, capture_output=True, check=True, timeout=60)
        export.stdout.close()
        status = export.wait(timeout=60)
        errors.seek(0)
        assert errors.read().decode() == ""
    assert status == 141
    assert dataset.stats["count"] >= 4  # 1.2 MB or more: more than a pipe holds
    assert json.loads(head.stdout)["messages"][-1]["content"] == long_answer
