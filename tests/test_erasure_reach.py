"""Erasure reaches the model and leaves no text: a tainted champion is rolled back in the
erasure's own transaction and retrained without the erased rows (per the task's on_taint
policy), experiments pitting a tainted version stop, a tainted judge is not asked, and the
erased person's text is gone from knowledge gaps, evaluation cases, the admin's history,
dataset stats, tracked export files, a pg_dump of the database and every file under VAR_DIR and
ARTIFACTS_DIR."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.core.management import call_command
from django.test import RequestFactory

from abtesting import experiments
from abtesting.models import EvalCase, EvalSuite, Experiment
from abtesting.services import suite_from_dataset
from curation.models import Dataset, DatasetExport, DatasetItem, KnowledgeGap
from curation.services import curation_run_create, curation_run_execute, dataset_freeze_new
from interactions import services as ingest
from interactions.models import ErasureRequest
from registry import services as registry
from registry.erasure import retraining_execute
from registry.models import ActiveModel, LifecycleEvent, ModelVersion, PromotionPolicy, Retraining
from tests.factories import ApiClientFactory
from tests.helpers import dump_containing, files_containing, tables_containing
from tests.training.conftest import base_model_dir, command, make_examples, training_settings  # noqa: F401  (fixtures)
from training import runner
from training import services as training
from training.models import TrainingJob

TAG = uuid.uuid4().hex[:8]
USER = f"erasee-{TAG}@example.org"
QUERY = f"parcel tracking number lost {TAG}"
ANSWER = f"Your parcel is somewhere quiet {TAG}."
CORRECTION = f"Call the depot and quote the tracking number {TAG}."
PERSON_VALUES = (USER, QUERY, ANSWER, CORRECTION)
# each shares three of the query's words: the person's query is the gap's representative
OTHERS = ["parcel tracking number", "tracking number lost", "parcel number lost", "parcel tracking lost"]


class People:
    """The erased person and four others, recorded through the interactions services."""

    def __init__(self, task: str = "support") -> None:
        self.client, self.task = ApiClientFactory(scopes=["ingest", "read", "admin"]), task
        self.person = self.record(USER, QUERY, ANSWER, confidence=0.1)
        ingest.feedback_create(client=self.client, interaction_id=self.person, payload={"kind": "correction", "correction": CORRECTION})
        for n, text in enumerate(OTHERS):
            other = self.record(f"other-{n}", text, f"Answer number {n} for everyone.", confidence=0.1)
            ingest.feedback_create(client=self.client, interaction_id=other, payload={"kind": "score", "score": 5})

    def record(self, user: str, text: str, output: str, confidence: float) -> str:
        payload = {"task": self.task, "input_text": text, "output_text": output, "confidence": confidence, "user_id": user}
        return str(ingest.interaction_record(client=self.client, payload=payload).interaction.pk)

    def curate(self, eval_ratio: float = 0.5) -> Dataset:
        curation_run_execute(run_id=curation_run_create(task=self.task).pk)
        return dataset_freeze_new(task=self.task, kind="sft", min_tier="bronze", eval_ratio=eval_ratio)

    def erase(self) -> ErasureRequest:
        return ingest.subject_erase(client=self.client, user_id=USER, requested_by="test")


def fake_version(task: str, number: int, **fields) -> ModelVersion:
    return ModelVersion.objects.create(task=task, name=f"base-{task}-v{number}", number=number, base_model="base", **fields)


def champion_of(task: str) -> ModelVersion:
    return ActiveModel.objects.select_related("version").get(task=task).version


def admin_edit(user, obj, message) -> None:
    """What the admin writes when staff change `obj` (the suite's ModelAdmin, where cases are inline)."""
    request = RequestFactory().post("/admin/")
    request.user = user
    admin.site._registry[EvalSuite].log_change(request, obj, message)


@pytest.mark.django_db
def test_an_erasure_leaves_no_text_in_gaps_cases_stats_exports_or_admin_history(settings, tmp_path, admin_user, make_api):
    settings.VAR_DIR = tmp_path
    people = People()
    dataset = people.curate(eval_ratio=0.9)
    assert DatasetItem.objects.filter(dataset=dataset, source_interaction_id=people.person, split="eval").exists()
    suite = suite_from_dataset(dataset=dataset)
    case = EvalCase.objects.get(suite=suite, source_interaction_id=people.person)
    admin_edit(admin_user, suite, [{"changed": {"name": "eval case", "object": str(case), "fields": ["Expected"]}}])
    admin_edit(admin_user, case, [{"changed": {"fields": ["Expected"]}}])
    export = tmp_path / "exports" / "support.jsonl"
    export.parent.mkdir()
    call_command("export_dataset", str(dataset.pk), "--split", "all", "--out", str(export), stderr=io.StringIO())
    stuck = tmp_path / "exports" / "stuck.jsonl"
    call_command("export_dataset", str(dataset.pk), "--out", str(stuck), stderr=io.StringIO())
    stuck.unlink()
    stuck.mkdir()  # a path that cannot be unlinked: the erasure lists it for a person
    (stuck / "keep").write_text("x")
    gap = KnowledgeGap.objects.get(task="support")
    assert gap.representative == QUERY  # the person's query stood for the others
    before = tables_containing(QUERY)
    assert {"curation_knowledgegap", "django_admin_log", "abtesting_evalcase", "curation_datasetitem"} <= set(before)
    assert files_containing([tmp_path], PERSON_VALUES)
    count = dataset.stats["count"]

    erasure = people.erase()

    for value in PERSON_VALUES:
        assert tables_containing(value) == {}, value
    assert files_containing([tmp_path], PERSON_VALUES) == {}
    gap = KnowledgeGap.objects.get(task="support")
    assert (gap.size, gap.representative in OTHERS) == (4, True)
    listed = make_api(scopes=("admin",)).get("/api/v1/curation/gaps").json()
    assert TAG not in json.dumps(listed)
    assert listed[0]["representative"] == gap.representative
    dataset.refresh_from_db()
    assert dataset.stats["count"] == count - 1 == DatasetItem.objects.filter(dataset=dataset).count()
    assert DatasetExport.objects.get(path=str(export.resolve())).deleted_at is not None
    assert not export.exists()
    assert DatasetExport.objects.get(path=str(stuck.resolve())).deletion_error.startswith("IsADirectoryError")
    assert erasure.pending == [line for line in erasure.pending if str(stuck.resolve()) in line] != []
    assert erasure.counts["exports_deleted"] == 1
    assert erasure.counts["knowledge_gaps_rebuilt"] == 1
    assert erasure.counts["admin_log_entries"] == 2
    assert erasure.counts["eval_cases"] == 1
    assert not LogEntry.objects.exists()


def trained_like(task: str, dataset: Dataset, number: int, **fields) -> ModelVersion:
    """A version as a job on `dataset` registers it (the job queued, never run: no weights needed)."""
    job = training.job_create(task=task, dataset_id=dataset.pk, recipe={"epochs": 1, "lora_rank": 4})
    TrainingJob.objects.filter(pk=job.pk).update(status="succeeded")
    return fake_version(task, number, dataset=dataset, training_job=job, **fields)


@pytest.mark.django_db
def test_a_tainted_champion_rolls_back_to_its_newest_untainted_predecessor_and_is_retrained(
    training_settings,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    people = People()
    dataset = people.curate()
    base = fake_version("support", 0, status="approved")
    earlier = fake_version("support", 1, status="approved")
    tainted = trained_like("support", dataset, 2, status="approved")
    for version in (base, earlier, tainted):
        registry.version_promote(version=version, actor="staff")

    with django_capture_on_commit_callbacks(execute=False) as queued:
        erasure = people.erase()

    assert champion_of("support") == earlier, "back to the earlier champion it replaced, not to the base"
    tainted.refresh_from_db()
    assert (tainted.tainted, tainted.status) == (True, "rolled_back")
    rollback = LifecycleEvent.objects.get(action="rollback")
    assert (rollback.from_version, rollback.to_version, rollback.actor) == (tainted, earlier, "erasure")
    assert f"erasure {erasure.pk}" in rollback.reason
    counts = erasure.counts
    assert (counts["versions_tainted"], counts["versions_rolled_back"], counts["versions_retrained"]) == (1, 1, 1)
    retraining = Retraining.objects.get(version=tainted)
    assert (retraining.status, retraining.erasure) == ("queued", erasure)
    assert queued, "the retraining is dispatched after the commit"

    retraining = retraining_execute(retraining_id=retraining.pk)

    assert retraining.status == "succeeded", retraining.error
    derived, job = retraining.dataset, retraining.training_job
    assert (derived.parent, derived.status, derived.tainted, derived.version) == (dataset, "frozen", False, dataset.version + 1)
    assert derived.stats["count"] == DatasetItem.objects.filter(dataset=derived).count() == dataset.stats["count"] - 1
    assert not DatasetItem.objects.filter(dataset=derived, target__contains=TAG).exists()
    old = tainted.training_job
    assert (job.status, job.dataset, job.method, job.recipe, job.parent_job) == ("queued", derived, old.method, old.recipe, None)
    assert retraining_execute(retraining_id=retraining.pk).training_job == job, "a second delivery does nothing"


@pytest.mark.django_db
@pytest.mark.parametrize("policy", ["rollback", "alert_only"])
def test_the_tasks_policy_decides_what_a_tainted_champion_does(training_settings, policy, make_api):  # noqa: F811
    PromotionPolicy.objects.create(task="support", on_taint=policy)
    people = People()
    dataset = people.curate()
    registry.version_promote(version=fake_version("support", 0, status="approved"), actor="staff")
    tainted = trained_like("support", dataset, 1, status="approved")
    registry.version_promote(version=tainted, actor="staff")

    erasure = people.erase()

    assert not Retraining.objects.exists()
    assert erasure.counts["versions_retrained"] == 0
    if policy == "rollback":
        assert champion_of("support").number == 0
        assert erasure.counts["versions_rolled_back"] == 1
        return
    assert champion_of("support") == tainted
    assert erasure.counts["versions_rolled_back"] == 0
    alert = LifecycleEvent.objects.filter(action="taint", reason__contains="alert_only").get()
    assert f"erasure {erasure.pk}" in alert.reason
    refused = make_api().post("/v1/chat/completions", {"model": "support", "messages": [{"role": "user", "content": "hi"}]},
                              format="json")  # fmt: skip
    assert refused.status_code == 409, refused.content


@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["shadow", "canary"])
def test_an_experiment_with_a_tainted_challenger_stops_in_the_erasure_and_the_challenger_is_retrained(training_settings, mode):  # noqa: F811
    people = People()
    dataset = people.curate()
    control = fake_version("support", 0, status="approved")
    registry.version_promote(version=control, actor="staff")
    challenger = trained_like("support", dataset, 1)
    experiment = experiments.experiment_start(challenger=challenger, actor="test", mode=mode)

    erasure = people.erase()

    experiment.refresh_from_db()
    assert experiment.status == "stopped"
    assert f"erasure {erasure.pk}: {challenger.name} is tainted" in experiment.reason
    assert experiments.running("support") is None
    assert experiments.canary_version(task="support", client=people.client, user_id="anyone") is None
    assert (erasure.counts["experiments_stopped"], erasure.counts["versions_retrained"]) == (1, 1)
    assert Retraining.objects.get().version == challenger
    assert champion_of("support") == control
    assert Experiment.objects.filter(status="running").count() == 0


@pytest.mark.django_db
def test_a_tainted_judge_is_never_asked(settings):
    judge = fake_version("judge", 1, status="approved", tainted=True, tainted_reason="erased")
    settings.JUDGE_MODEL, settings.JUDGE_URL = judge.name, ""
    with pytest.raises(experiments.ExperimentError, match="tainted and never serves"):
        experiments.ask_judge("q", "a", "b", key=1)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_erased_persons_champion_is_rolled_back_retrained_without_them_and_nothing_of_them_remains(training_settings, tmp_path):  # noqa: F811
    """Committed for real (pg_dump reads another connection): training, erasure, retraining."""
    settings = training_settings
    settings.VAR_DIR = tmp_path / "var"
    rows = [{"prompt": p, "target": t} for p, t in (command(__import__("random").Random(3)) for _ in range(40))]
    make_examples("sft", rows, task="support")
    people = People()
    dataset = people.curate()
    assert DatasetItem.objects.filter(dataset=dataset, source_interaction_id=people.person).exists()
    job = runner.job_execute(job_id=training.job_create(task="support", dataset_id=dataset.pk, recipe={"epochs": 1}).pk)
    assert job.status == "succeeded", job.error
    tainted = ModelVersion.objects.get(training_job=job)
    registry.version_approve(version=tainted, actor="staff")
    registry.version_promote(version=tainted, actor="staff")
    export = settings.VAR_DIR / "support.jsonl"
    settings.VAR_DIR.mkdir(exist_ok=True)
    call_command("export_dataset", str(dataset.pk), "--split", "all", "--out", str(export), stderr=io.StringIO())
    roots = [settings.VAR_DIR, settings.ARTIFACTS_DIR]
    assert set(dump_containing(PERSON_VALUES)) == {QUERY, ANSWER, CORRECTION}, "the scan sees them before"
    assert files_containing(roots, PERSON_VALUES)

    erasure = people.erase()  # commits; the retraining and its training job run after the commit (Q_SYNC)

    assert champion_of("support").number == 0, "the tainted champion was rolled back to the base"
    counts = erasure.counts
    assert (counts["versions_tainted"], counts["versions_rolled_back"], counts["versions_retrained"]) == (1, 1, 1)
    retraining = Retraining.objects.select_related("training_job", "dataset").get(version=tainted)
    assert retraining.status == "succeeded", retraining.error
    assert retraining.training_job.status == "succeeded", retraining.training_job.error
    assert retraining.dataset.parent_id == dataset.pk
    assert not DatasetItem.objects.filter(dataset=retraining.dataset, source_interaction_id=people.person).exists()
    retrained = ModelVersion.objects.get(training_job=retraining.training_job)
    assert (retrained.retrained_from, retrained.dataset, retrained.tainted) == (tainted, retraining.dataset, False)
    assert registry.lineage(version=retrained)["ancestry"][0]["retrained_from"] == tainted.name
    assert dump_containing(PERSON_VALUES) == {}
    assert files_containing(roots, PERSON_VALUES) == {}
