from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from curation.models import Dataset, DatasetItem, FrozenDatasetError, TrainingExample
from curation.services import CurationError, dataset_create, dataset_freeze, dataset_freeze_new
from interactions import services as ingest
from tests.curation.test_pipeline import curate

pytestmark = pytest.mark.django_db


@pytest.fixture
def curated(mix):
    curate()
    return mix


def test_freezing_snapshots_splits_and_hashes(curated):
    dataset = dataset_freeze_new(task="support", kind="sft", min_tier="bronze", eval_ratio=0.5, seed=1)
    usable = TrainingExample.objects.filter(task="support", kind="sft", duplicate_of__isnull=True).exclude(tier="reject")
    assert dataset.status == "frozen"
    assert dataset.stats["count"] == usable.count() == DatasetItem.objects.filter(dataset=dataset).count()
    assert sum(dataset.stats["splits"].values()) == dataset.stats["count"]
    assert dataset.stats["tokens"]["total"] > 0
    assert set(dataset.stats["tiers"]) <= {"gold", "silver", "bronze"}
    again = dataset_freeze_new(task="support", kind="sft", min_tier="bronze", eval_ratio=0.5, seed=1)
    assert again.version == dataset.version + 1
    assert again.manifest_hash == dataset.manifest_hash, "same examples, filters and seed: same manifest"
    other_seed = dataset_freeze_new(task="support", kind="sft", min_tier="bronze", eval_ratio=0.5, seed=2)
    assert other_seed.stats["count"] == dataset.stats["count"]


def test_the_split_is_stratified_by_label_for_binary(curated):
    dataset = dataset_freeze_new(task="support", kind="binary", min_tier="bronze", eval_ratio=0.5)
    items = list(DatasetItem.objects.filter(dataset=dataset).values("split", "label"))
    assert {i["label"] for i in items} == {True, False}
    for label in (True, False):
        group = [i for i in items if i["label"] is label]
        if len(group) > 1:
            assert {i["split"] for i in group} == {"train", "eval"}


def test_a_frozen_dataset_never_changes(curated):
    dataset = dataset_freeze_new(task="support", kind="sft", min_tier="bronze")
    item = DatasetItem.objects.filter(dataset=dataset).first()
    dataset.name = "renamed"
    with pytest.raises(FrozenDatasetError):
        dataset.save()
    with pytest.raises(FrozenDatasetError):
        dataset.delete()
    item.target = "changed"
    with pytest.raises(FrozenDatasetError):
        item.save()
    with pytest.raises(FrozenDatasetError):
        item.delete()
    with pytest.raises(FrozenDatasetError):
        DatasetItem.objects.filter(dataset=dataset).update(target="changed")
    with pytest.raises(FrozenDatasetError):
        DatasetItem.objects.filter(dataset=dataset).delete()
    with pytest.raises(FrozenDatasetError):
        DatasetItem.objects.create(
            **{**{f.attname: getattr(item, f.attname) for f in DatasetItem._meta.concrete_fields}, "id": None, "position": 999}
        )
    with pytest.raises(CurationError, match="already frozen"):
        dataset_freeze(dataset=dataset)
    # editing the source example later does not reach the snapshot
    TrainingExample.objects.filter(pk=item.example_id).update(target="edited later")
    item.refresh_from_db()
    assert item.target != "edited later"


def test_filters_select_and_balance(curated):
    gold = dataset_freeze_new(task="support", kind="sft", min_tier="gold", eval_ratio=0)
    assert set(gold.stats["tiers"]) == {"gold"}
    billing = dataset_freeze_new(task="support", kind="sft", min_tier="bronze", categories=["billing"], eval_ratio=0)
    assert billing.stats["categories"] == {"billing": 1}
    small = dataset_freeze_new(task="support", kind="sft", min_tier="bronze", max_size=2, eval_ratio=0)
    assert small.stats["count"] == 2
    balanced = dataset_freeze_new(task="support", kind="binary", min_tier="bronze", balance="label", eval_ratio=0)
    assert balanced.stats["labels"]["true"] == balanced.stats["labels"]["false"]


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"kind": "poem"}, "kind"),
        ({"min_tier": "reject"}, "min_tier"),
        ({"eval_ratio": 1.5}, "eval_ratio"),
        ({"balance": "mood"}, "balance"),
    ],
)
def test_bad_filters_are_refused(curated, filters, field):
    with pytest.raises(CurationError) as error:
        dataset_create(task="support", **filters)
    assert field in error.value.fields
    assert not Dataset.objects.exists()


def test_nothing_to_freeze_is_an_error_and_leaves_no_dataset(curated):
    with pytest.raises(CurationError, match="No sft examples"):
        dataset_freeze_new(task="support", kind="sft", categories=["nothing-here"])
    assert not Dataset.objects.exists()


def test_erasure_removes_examples_and_items_and_taints_datasets(curated, make_api):
    dataset = dataset_freeze_new(task="support", kind="sft", min_tier="bronze")
    erasure = ingest.subject_erase(client=curated.client, user_id="u1", requested_by="test")
    assert erasure.counts["training_examples"] == 2
    assert erasure.counts["dataset_items"] == 1
    assert erasure.counts["datasets_tainted"] == 1
    dataset.refresh_from_db()
    assert dataset.tainted
    assert "erased" in dataset.tainted_reason
    assert not DatasetItem.objects.filter(source_interaction_id=curated.ids["good"]).exists()
    api = make_api(scopes=("admin",))
    assert api.get(f"/api/v1/datasets/{dataset.pk}").json()["tainted"] is True


def test_the_datasets_api_lists_shows_and_exports(curated, make_api):
    dataset = dataset_freeze_new(task="support", kind="sft", min_tier="bronze", eval_ratio=0)
    api = make_api(scopes=("admin",))
    assert [d["id"] for d in api.get("/api/v1/datasets", {"task": "support"}).json()] == [dataset.pk]
    assert api.get(f"/api/v1/datasets/{dataset.pk}").json()["manifest_hash"] == dataset.manifest_hash
    response = api.get(f"/api/v1/datasets/{dataset.pk}/export", {"format": "alpaca", "split": "train"})
    assert response.status_code == 200
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert len(lines) == dataset.stats["count"]
    assert set(json.loads(lines[0])) == {"instruction", "input", "output"}
    assert api.get(f"/api/v1/datasets/{dataset.pk}/export", {"format": "dpo"}).status_code == 400
    assert api.get(f"/api/v1/datasets/{dataset.pk}/export", {"split": "test"}).status_code == 400
    assert api.get("/api/v1/datasets/999999").status_code == 404
    assert make_api(scopes=("read",)).get("/api/v1/datasets").status_code == 403


def test_the_commands_freeze_and_export(curated, tmp_path):
    out = io.StringIO()
    call_command("freeze_dataset", "--task", "support", "--kind", "preference", "--min-tier", "bronze", stdout=out, stderr=io.StringIO())
    dataset_id = out.getvalue().strip()
    target = tmp_path / "pairs.jsonl"
    call_command("export_dataset", dataset_id, "--split", "all", "--out", str(target), stderr=io.StringIO())
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows
    assert set(rows[0]) == {"prompt", "chosen", "rejected"}
    with pytest.raises(CommandError, match="does not fit preference"):
        call_command("export_dataset", dataset_id, "--format", "kto", "--out", str(target))
    with pytest.raises(CommandError, match="No such dataset"):
        call_command("export_dataset", "4242", "--out", str(target))
    with pytest.raises(CommandError, match="No sft examples"):
        call_command("freeze_dataset", "--task", "nothing")


def test_after_erasure_no_table_holds_the_subjects_text(curated):
    dataset_freeze_new(task="support", kind="sft", min_tier="bronze")
    dataset_freeze_new(task="support", kind="preference", min_tier="bronze")
    from tests.helpers import tables_containing

    assert tables_containing("subscription renew")
    ingest.subject_erase(client=curated.client, user_id="u3", requested_by="test")
    assert tables_containing("subscription renew") == {}
    assert tables_containing("same day every month") == {}
