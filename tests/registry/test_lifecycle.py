"""Versions with lineage, the lifecycle with its audit, and one champion under concurrency."""

from __future__ import annotations

import io
import threading
from itertools import pairwise

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from interactions import services as ingest
from registry import services
from registry.models import ActiveModel, LifecycleEvent, ModelVersion
from tests.training.conftest import sft_dataset
from training import runner
from training import services as training
from training.models import TrainingJob

pytestmark = pytest.mark.django_db


def fake_version(task: str, number: int, **fields) -> ModelVersion:
    """A registered version without training (the lifecycle does not need weights)."""
    return ModelVersion.objects.create(task=task, name=f"base-{task}-v{number}", number=number, base_model="base", **fields)


@pytest.mark.slow
def test_a_finished_job_registers_a_version_with_its_lineage(training_settings):
    dataset = sft_dataset(count=24)
    job = runner.job_execute(job_id=training.job_create(task="commands", recipe={"epochs": 1}).pk)
    assert job.status == "succeeded", job.error
    version = ModelVersion.objects.get(training_job=job)
    assert version.name == "tiny-llama-commands-v1"
    assert (version.status, version.dataset, version.adapter_path) == ("candidate", dataset, job.adapter_path)
    assert version.parent.number == 0
    assert version.parent.adapter_path == ""
    assert version.metrics["train_loss"] == job.metrics["train_loss"]
    assert LifecycleEvent.objects.filter(action="register", to_version=version).exists()
    tree = services.lineage(version=version)
    assert [a["name"] for a in tree["ancestry"]] == ["tiny-llama-commands-v1", "tiny-llama-commands-v0"]
    assert tree["interaction_count"] == dataset.stats["count"]
    item = dataset.items.first()
    assert services.versions_trained_on(interaction_id=item.source_interaction_id) == [version]
    # a second job continuing from the first one is its child
    child_job = runner.job_execute(job_id=training.job_create(task="commands", recipe={"epochs": 1}, continue_from_current=True).pk)
    child = ModelVersion.objects.get(training_job=child_job)
    assert (child.name, child.parent) == ("tiny-llama-commands-v2", version)
    assert set(services.versions_trained_on(interaction_id=item.source_interaction_id)) == {version, child}


def test_erasing_a_subject_taints_every_version_built_on_their_data(training_settings):
    dataset = sft_dataset(count=10)
    job = training.job_create(task="commands")
    TrainingJob.objects.filter(pk=job.pk).update(status="succeeded", adapter_path="/nonexistent")
    job.refresh_from_db()
    version = services.version_register_job(job=job)
    child = fake_version("commands", 9, parent=version)
    other = fake_version("commands", 10)
    interaction = dataset.items.first().source_interaction_id
    from interactions.models import Interaction

    subject = Interaction.objects.get(pk=interaction).subject or None
    if subject is None:  # the training fixtures have no subjects: give this interaction one, then erase it
        subject = ingest.subject_get_or_create(client=Interaction.objects.get(pk=interaction).client, user_id="leaver")
        Interaction.objects.filter(pk=interaction).update(subject=subject)
    ingest.subject_erase_by_subject(subject=subject, requested_by="test")
    version.refresh_from_db()
    child.refresh_from_db()
    other.refresh_from_db()
    assert version.tainted
    assert "erased" in version.tainted_reason
    assert child.tainted, "built on a tainted version"
    assert not other.tainted
    with pytest.raises(services.RegistryError, match="tainted and can never be approved"):
        services.version_approve(version=version, actor="staff")
    approved = fake_version("commands", 11, status="approved", tainted=True, tainted_reason="x")
    with pytest.raises(services.RegistryError, match="can never be promoted"):
        services.version_promote(version=approved, actor="staff")


def test_the_lifecycle_writes_an_event_for_every_change():
    base = fake_version("support", 0, status="approved")
    v1, v2 = fake_version("support", 1), fake_version("support", 2)
    services.version_promote(version=base, actor="staff")
    with pytest.raises(services.RegistryError, match="only an approved version"):
        services.version_promote(version=v1, actor="staff")
    services.version_approve(version=v1, actor="staff", reason="arena win")
    services.version_promote(version=v1, actor="staff", reason="go")
    assert ActiveModel.objects.get(task="support").version == v1
    base.refresh_from_db()
    assert base.status == "approved"
    services.version_reject(version=v2, actor="staff", reason="worse")
    active = services.version_rollback(task="support", actor="staff", reason="complaints")
    assert active == base
    v1.refresh_from_db()
    assert v1.status == "rolled_back"
    with pytest.raises(services.RegistryError, match="rejected"):
        services.version_rollback(task="support", actor="staff", to_version=v2)
    with pytest.raises(services.RegistryError, match="is the champion"):
        services.version_retire(version=base, actor="staff")
    services.version_retire(version=v1, actor="staff", reason="old")
    actions = list(LifecycleEvent.objects.filter(task="support").order_by("id").values_list("action", "actor", "reason"))
    assert [a for a, _, _ in actions] == ["promote", "approve", "promote", "reject", "rollback", "retire"]
    assert ActiveModel.objects.get(task="support").revision == 3


def test_compare_shows_metrics_side_by_side_with_percent_change():
    first = fake_version("support", 1, metrics={"eval_loss": 2.0, "exact_match": 0.5})
    second = fake_version("support", 2, metrics={"eval_loss": 1.5, "exact_match": 0.75, "new": 1})
    table = services.versions_compare(first=first, second=second)["metrics"]
    assert table["eval_loss"]["change_percent"] == -25.0
    assert table["exact_match"]["change_percent"] == 50.0
    assert table["new"]["change_percent"] is None


@pytest.mark.django_db(transaction=True)
def test_50_concurrent_promotions_leave_one_champion_and_a_consistent_history():
    base = fake_version("race", 0, status="approved")
    services.version_promote(version=base, actor="setup")
    assert ActiveModel.objects.filter(task="race").exists()
    versions = [fake_version("race", n, status="approved") for n in range(1, 51)]
    barrier = threading.Barrier(len(versions))
    errors = []

    def promote(version: ModelVersion) -> None:
        try:
            barrier.wait()
            services.version_promote(version=version, actor=f"thread-{version.number}")
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ActiveModel.objects.filter(task="race").count() == 1
    champion = ActiveModel.objects.get(task="race")
    assert ModelVersion.objects.filter(task="race", status="active").get() == champion.version
    promotions = list(LifecycleEvent.objects.filter(task="race", action="promote").order_by("id"))
    assert len(promotions) == 51
    for earlier, later in pairwise(promotions):
        assert later.from_version_id == earlier.to_version_id, "each promotion replaced the one before it"
    assert promotions[-1].to_version == champion.version
    assert champion.revision == 51


def test_promote_and_rollback_commands():
    base = fake_version("cli", 0, status="approved")
    v1 = fake_version("cli", 1)
    call_command("promote", base.name, stdout=io.StringIO())
    with pytest.raises(CommandError, match="only an approved version"):
        call_command("promote", v1.name)
    out = io.StringIO()
    call_command("promote", v1.name, "--approve", "--reason", "better", stdout=out)
    assert "is now the champion of cli" in out.getvalue()
    out = io.StringIO()
    call_command("rollback", "cli", "--reason", "regression", stdout=out)
    assert f"rolled back to {base.name}" in out.getvalue()
    with pytest.raises(CommandError, match="No model version named 'nope'"):
        call_command("promote", "nope")
    with pytest.raises(CommandError, match="has no champion"):
        call_command("rollback", "unknown-task")


def test_a_task_policy_may_allow_promoting_candidates_without_approval():
    from registry.models import PromotionPolicy

    candidate = fake_version("auto", 1)
    with pytest.raises(services.RegistryError, match="only an approved version"):
        services.version_promote(version=candidate, actor="staff")
    PromotionPolicy.objects.create(task="auto", auto_promote=True)
    assert services.version_promote(version=candidate, actor="staff").status == "active"
