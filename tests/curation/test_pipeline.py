from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from curation.models import CurationRun, KnowledgeGap, TrainingExample
from interactions import services as ingest
from tests.curation.conftest import PII_INPUT
from tests.factories import ApiClientFactory
from tests.helpers import tables_containing

pytestmark = pytest.mark.django_db


def curate(**options) -> CurationRun:
    call_command("curate", stdout=io.StringIO(), stderr=io.StringIO(), **options)
    return CurationRun.objects.order_by("-pk").first()


def examples(mix, name, kind=None):
    queryset = TrainingExample.objects.filter(source_interaction_id=mix.ids[name])
    return list(queryset.filter(kind=kind) if kind else queryset)


def test_a_run_turns_the_mix_into_the_right_examples(mix):
    run = curate()
    assert run.status == "succeeded"
    good = examples(mix, "good", "sft")[0]
    assert good.tier == "gold"
    assert good.target == "Open Settings, then Security, then Reset password."
    assert examples(mix, "good", "binary")[0].label is True
    assert examples(mix, "ok", "sft")[0].tier == "bronze"
    assert examples(mix, "ok", "sft")[0].category == "billing"
    corrected = examples(mix, "corrected", "sft")[0]
    assert (corrected.target, corrected.tier, corrected.origin) == ("It renews on the same day every month.", "gold", "correction")
    pair = examples(mix, "corrected", "preference")[0]
    assert (pair.target, pair.rejected) == ("It renews on the same day every month.", "It renews every week.")
    choices = examples(mix, "chosen", "preference")
    assert {c.rejected for c in choices} == {"Refund", "Money back soon"}
    assert {c.target for c in choices} == {"Your refund is on its way"}
    disliked = examples(mix, "disliked")
    assert [(e.kind, e.label) for e in disliked] == [("binary", False)]
    assert examples(mix, "placeholder", "sft")[0].tier == "reject"
    assert examples(mix, "opted_out") == []
    assert examples(mix, "flagged") == []
    assert examples(mix, "silent") == []
    counts = run.counts
    assert counts["skipped_opted_out"] == 1
    assert counts["skipped_flagged"] == 1
    assert counts["not_eligible"] >= 1
    assert counts["read"] == len(mix.ids)


def test_no_raw_pii_reaches_an_example(mix):
    curate()
    pii = examples(mix, "pii", "sft")[0]
    assert pii.prompt == [{"role": "user", "content": "My email is [EMAIL] and my phone is [PHONE], why was I charged twice?"}]
    assert pii.target == "We refunded card [CREDIT_CARD]; contact [EMAIL]."
    assert pii.pii_found == {"EMAIL": 2, "PHONE": 1, "CREDIT_CARD": 1}
    for raw in ("jane.doe@example.com", "7946 0958", "4111 1111 1111 1111", "billing@example.com"):
        assert "curation_trainingexample" not in tables_containing(raw)


def test_duplicates_point_to_the_best_example(mix):
    curate()
    good = examples(mix, "good", "sft")[0]
    assert examples(mix, "exact_dup", "sft")[0].duplicate_of == good
    assert examples(mix, "near_dup", "sft")[0].duplicate_of == good
    assert good.duplicate_of is None


def test_a_second_run_over_unchanged_data_does_almost_no_work(mix):
    curate()
    again = curate()
    assert again.counts.get("read", 0) == 0
    assert again.counts.get("examples_created", 0) == 0


def test_new_feedback_is_picked_up_by_the_next_run(mix):
    curate()
    mix.feedback("silent", kind="score", score=5)
    mix.feedback("ok", kind="thumb", thumb="up")
    run = curate()
    assert run.counts["read"] == 2
    assert examples(mix, "silent", "sft")[0].tier == "silver"
    assert examples(mix, "ok", "sft")[0].tier == "silver"  # was bronze: a thumb up agrees with its 4
    assert run.counts["examples_updated"] >= 1


def test_a_later_flag_or_opt_out_removes_existing_examples(mix):
    curate()
    assert examples(mix, "good")
    mix.feedback("good", kind="flag", reason="wrong")
    ingest.subject_opt_out(client=mix.client, user_id="u2")
    curate()
    assert examples(mix, "good") == []
    assert examples(mix, "ok") == []


def test_knowledge_gaps_are_listed_largest_first(mix, make_api):
    curate()
    gaps = list(KnowledgeGap.objects.all())
    assert [g.size for g in gaps] == [3, 1]
    assert "invoice" in gaps[0].representative.lower()
    api = make_api(scopes=("admin",))
    body = api.get("/api/v1/curation/gaps", {"task": "support"}).json()
    assert [g["size"] for g in body] == [3, 1]


def test_curate_refuses_an_unknown_task_and_a_bad_date(mix):
    with pytest.raises(CommandError, match="No interactions of task 'nope'"):
        call_command("curate", "--task", "nope")
    with pytest.raises(CommandError, match="not a date"):
        call_command("curate", "--since", "yesterday-ish")


def test_since_reconsiders_older_data(mix):
    curate()
    run = curate(since="2000-01-01")
    assert run.counts["read"] == len(mix.ids)
    assert run.counts["examples_created"] == 0


def test_a_reviewer_approval_makes_an_example_gold_and_survives_reruns(mix, django_user_model):
    from curation.services import example_review

    curate()
    ok = examples(mix, "ok", "sft")[0]
    staff = django_user_model.objects.create_user("reviewer")
    example_review(examples=TrainingExample.objects.filter(pk=ok.pk), approve=True, reviewer=staff)
    curate(since="2000-01-01")
    ok.refresh_from_db()
    assert (ok.tier, ok.review_status, ok.reviewed_by) == ("gold", "approved", staff)


def test_the_run_api_starts_a_run_and_reports_it(mix, make_api, django_capture_on_commit_callbacks):
    api = make_api(scopes=("admin",))
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/curation/runs", {"task": "support"})
    assert response.status_code == 202
    run = api.get(f"/api/v1/curation/runs/{response.json()['id']}").json()
    assert run["status"] == "succeeded"  # Q_SYNC in tests runs the task at commit
    assert run["counts"]["read"] == len(mix.ids)
    assert api.post("/api/v1/curation/runs", {"task": "Bad Task"}).status_code == 400
    assert make_api(scopes=("read", "ingest")).post("/api/v1/curation/runs", {}).status_code == 403


def test_raw_pii_input_is_still_only_in_interactions(mix):
    curate()
    assert set(tables_containing("jane.doe@example.com")) == {"interactions_interaction"}
    assert PII_INPUT


def test_the_daily_task_curates_everything(mix):
    from curation import tasks

    assert tasks.run_daily_curation().endswith("succeeded")
    assert TrainingExample.objects.exists()
    assert tasks.run_daily_curation().endswith("succeeded")
    assert CurationRun.objects.order_by("-pk").first().counts.get("read", 0) == 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_parallel_workers_give_the_same_examples_as_one_process(mix, settings, monkeypatch):
    from curation.services import runs

    monkeypatch.setattr(runs, "CHUNK", 3)  # several chunks over the small mix

    def snapshot():
        rows = TrainingExample.objects.values_list("key", "tier", "quality_score", "duplicate_of__key", "target")
        return sorted(rows, key=lambda r: r[0])

    TrainingExample.objects.all().delete()  # feedback already curated its interactions one by one
    settings.CURATION_WORKERS = 1
    serial = curate(since="2000-01-01")
    expected = snapshot()
    TrainingExample.objects.all().delete()
    settings.CURATION_WORKERS = 2
    parallel = curate(since="2000-01-01")
    assert snapshot() == expected
    assert parallel.counts["examples_created"] == serial.counts["examples_created"] == len(expected)
    assert parallel.counts["read"] == len(mix.ids)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_tied_near_duplicates_keep_the_same_keepers_whatever_the_number_of_workers(settings, monkeypatch):
    """Each choice yields two preference pairs with one prompt and one chosen answer: near duplicates
    of equal quality. Their keeper must not depend on which worker stored its chunk first."""
    from curation.services import runs

    client = ApiClientFactory(scopes=["admin"])
    for index in range(24):
        candidates = [{"text": f"Answer {index} is the chosen one"}, {"text": "Nope"}, {"text": "Also no"}]
        payload = {"task": "support", "input_text": f"Question number {index}?", "output_text": "x", "candidates": candidates}
        interaction = ingest.interaction_record(client=client, payload=payload).interaction
        ingest.feedback_create(client=client, interaction_id=interaction.pk, payload={"kind": "choice", "candidate_rank": 0})
    monkeypatch.setattr(runs, "CHUNK", 2)

    def keepers() -> list[tuple[str, str | None]]:
        return sorted(TrainingExample.objects.values_list("key", "duplicate_of__key"))

    snapshots = []
    for workers in (1, 2, 3, 2, 3):
        TrainingExample.objects.all().delete()
        settings.CURATION_WORKERS = workers
        assert curate(since="2000-01-01").status == "succeeded"
        snapshots.append(keepers())
    assert sum(1 for _, kept in snapshots[0] if kept) == 24
    assert all(snapshot == snapshots[0] for snapshot in snapshots)
    assert all(key.endswith("choice-r1") for key, kept in snapshots[0] if not kept)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_tied_exact_duplicates_across_interactions_keep_the_same_keepers_whatever_the_number_of_workers(settings, monkeypatch):
    """Twelve questions asked twice by different users, rated alike: exact duplicates of equal
    quality, usually in different chunks. The keeper must not depend on which chunk was stored first."""
    from curation.services import runs

    client = ApiClientFactory(scopes=["admin"])
    for copy in range(2):
        for index in range(12):
            payload = {"task": "support", "input_text": f"How do I do thing {index}?", "output_text": f"Do {index}."}
            interaction = ingest.interaction_record(client=client, payload={**payload, "user_id": f"u{copy}-{index}"}).interaction
            ingest.feedback_create(client=client, interaction_id=interaction.pk, payload={"kind": "score", "score": 5})
    monkeypatch.setattr(runs, "CHUNK", 2)

    def keepers() -> list[tuple[str, str | None]]:
        return sorted(TrainingExample.objects.values_list("key", "duplicate_of__key"))

    snapshots = []
    for workers in (1, 2, 3, 2, 3):
        TrainingExample.objects.all().delete()
        settings.CURATION_WORKERS = workers
        assert curate(since="2000-01-01").status == "succeeded"
        snapshots.append(keepers())
    assert sum(1 for _, kept in snapshots[0] if kept) == 24
    assert all(snapshot == snapshots[0] for snapshot in snapshots)
