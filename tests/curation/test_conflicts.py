"""Curation keeps contrast: near duplicates judged on the prompt and the answer apart. Pairs whose
answers differ where their prompts differ stay; contradicting answers to one question become a
conflict for review (API, admin); true near duplicates still drop."""

from __future__ import annotations

import json
import random

import pytest
from django.contrib.auth.models import User

from curation import dedup
from curation.models import CurationConfig, DuplicateConflict, TrainingExample
from interactions import services as ingest
from tests.curation.test_pipeline import curate
from tests.factories import ApiClientFactory
from tests.helpers import tables_containing

BODY = (
    "Support ticket: hello, the parcel for my order {order} arrived today but the box was crushed and the item inside "
    "is broken. I paid {amount} EUR for the {product}. Please send me a replacement as soon as you can, thank you."
)
PRODUCTS = ["desk lamp", "kettle", "monitor stand", "office chair", "toaster", "blender"]


def ticket(n: int, *, vary: str = "order") -> tuple[str, str]:
    """A ticket and its answer that differ from ticket 0 in one value (order id, amount or product),
    carried from the prompt into the answer."""
    values = {"order": 4100, "amount": "19.90", "product": "desk lamp"}
    values[vary] = {"order": 4100 + n, "amount": f"{19 + n}.90", "product": PRODUCTS[n % len(PRODUCTS)] + f" model {n}"}[vary]
    answer = json.dumps({"intent": "replacement", "order": values["order"], "amount": values["amount"], "product": values["product"]})
    return BODY.format(**values), answer


def contrast_items() -> list[dedup.Item]:
    pairs = [ticket(n, vary=vary) for vary in ("order", "amount", "product") for n in range(vary != "order", 60 + (vary != "order"))]
    return [dedup.Item(i, prompt, 0.8, f"k{i:03d}", answer) for i, (prompt, answer) in enumerate(pairs)]


def test_contrast_pairs_survive_while_the_old_whole_text_rule_dropped_most_of_them():
    items = contrast_items()
    judgement = dedup.judge_near_duplicates(items, threshold=0.85)
    assert judgement.duplicates == {}
    assert judgement.conflicts == []
    assert judgement.contrast_kept >= 170  # every ticket but the first of each prompt cluster
    whole_text = [dedup.Item(i.key, i.text + "\n" + i.answer, i.quality, i.rank) for i in items]
    assert len(dedup.near_duplicates(whole_text, threshold=0.85)) >= 90  # 180 -> fewer than 90: the reported bug


def test_contradicting_answers_to_one_question_are_a_conflict_and_the_better_one_stays():
    prompt, answer = ticket(3)
    contradiction = answer.replace("replacement", "refund")
    items = [
        *contrast_items(),
        dedup.Item("worse", prompt, 0.7, "z1", contradiction),
        dedup.Item("better", prompt + "!", 0.95, "z2", answer),
    ]
    judgement = dedup.judge_near_duplicates(items, threshold=0.85)
    assert judgement.conflicts == [dedup.Conflict("better", "worse", 1.0, dedup.SAME_PROMPT)]
    assert judgement.held_out == {"worse": "better"}
    assert judgement.duplicates == {3: "better"}  # the same answer to the same ticket: a duplicate


def test_a_reworded_question_with_a_different_number_is_a_conflict_and_a_reworded_answer_a_duplicate():
    prompt, answer = ticket(0)
    reworded = prompt.replace("thank you", "thanks a lot")
    assert dedup.relation(prompt, answer, reworded, answer.replace("19.90", "21.90")) == (dedup.CONFLICT, dedup.UNEXPLAINED)
    assert dedup.relation(prompt, "Open Settings, then Security, then choose Reset password.", reworded,
                          "Open Settings, then Security, then choose Reset password now.")[0] == dedup.DUPLICATE  # fmt: skip
    assert dedup.relation(prompt, answer, *ticket(1))[0] == dedup.CONTRAST


def test_a_pair_a_reviewer_kept_both_of_is_never_a_conflict_again():
    prompt, answer = ticket(0)
    items = [dedup.Item(1, prompt, 0.9, "a", answer), dedup.Item(2, prompt, 0.8, "b", answer.replace("replacement", "refund"))]
    assert len(dedup.judge_near_duplicates(items).conflicts) == 1
    assert dedup.judge_near_duplicates(items, agreed=frozenset({frozenset({1, 2})})) == dedup.Judgement()


def test_judgements_do_not_depend_on_the_order_items_arrive_in():
    prompt, answer = ticket(5)
    items = [*contrast_items(), dedup.Item(900, prompt, 0.5, "x", answer.replace("replacement", "refund")),
             dedup.Item(901, prompt, 0.5, "y", answer + " ")]  # fmt: skip
    expected = dedup.judge_near_duplicates(items)
    assert expected.conflicts
    for seed in range(3):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        assert dedup.judge_near_duplicates(shuffled) == expected


class Tickets:
    """Eight tickets that differ in their order id (contrast); ticket 2 asked again with a staff
    correction (the same answer: a near duplicate) and once more with a contradicting answer (a
    user's thumb up on a wrong label); ticket 5 asked again with the same answer (a near duplicate)."""

    def __init__(self) -> None:
        self.client = ApiClientFactory(scopes=["admin"])
        self.ids: dict[str, str] = {}
        for n in range(8):
            self.record(f"t{n}", *ticket(n), feedback={"kind": "score", "score": 5})
        prompt, answer = ticket(2)
        self.wrong = answer.replace("replacement", "refund")
        self.record("wrong", prompt, self.wrong, user="wrong-user", feedback={"kind": "thumb", "thumb": "up"})
        self.record(
            "fixed", prompt.replace("thank you", "thanks"), "x", feedback={"kind": "correction", "correction": answer, "source": "staff"}
        )
        self.record("near", ticket(5)[0] + " Regards.", ticket(5)[1] + ".", feedback={"kind": "score", "score": 4})

    def record(self, name: str, text: str, output: str, *, feedback: dict, user: str = "") -> None:
        payload = {"task": "tickets", "input_text": text, "output_text": output, "user_id": user or f"user-{name}"}
        interaction = ingest.interaction_record(client=self.client, payload=payload).interaction
        ingest.feedback_create(client=self.client, interaction_id=interaction.pk, payload=feedback)
        self.ids[name] = str(interaction.pk)

    def sft(self, name: str) -> TrainingExample:
        return TrainingExample.objects.get(source_interaction_id=self.ids[name], kind="sft")


@pytest.fixture
def tickets(db) -> Tickets:
    return Tickets()


def _in_datasets(example: TrainingExample) -> bool:
    example.refresh_from_db()
    return example.duplicate_of_id is None and example.tier != "reject"


@pytest.mark.django_db
def test_a_run_keeps_contrast_drops_a_true_duplicate_and_flags_the_conflict(tickets):
    run = curate(task="tickets", since="2000-01-01")
    fixed, wrong = tickets.sft("fixed"), tickets.sft("wrong")
    assert all(_in_datasets(tickets.sft(f"t{n}")) for n in range(8) if n != 2)
    assert tickets.sft("t2").duplicate_of == fixed
    assert tickets.sft("near").duplicate_of == tickets.sft("t5")
    conflict = DuplicateConflict.objects.get(kind="sft")
    assert (conflict.example_a, conflict.example_b, conflict.status) == (fixed, wrong, "open")
    assert not _in_datasets(wrong)  # held out until reviewed: the staff correction stays in
    assert wrong.duplicate_of == fixed
    assert run.counts["contrast_kept"] >= 6
    assert run.counts["conflicts"] >= 1
    assert run.counts["conflicts_held_out"] >= 1
    ingest.feedback_create(client=tickets.client, interaction_id=tickets.ids["t0"], payload={"kind": "thumb", "thumb": "up"})
    again = curate(task="tickets")  # a changed example: the task is deduplicated again
    assert again.counts["conflicts"] == run.counts["conflicts"]
    assert DuplicateConflict.objects.get(kind="sft").pk == conflict.pk  # found again: the same row


@pytest.mark.django_db
def test_a_desirable_and_an_undesirable_answer_to_one_prompt_are_no_conflict(tickets):
    prompt, answer = ticket(3)
    tickets.record("disliked", prompt, answer.replace("replacement", "refund"), feedback={"kind": "thumb", "thumb": "down"})
    curate(task="tickets", since="2000-01-01")
    disliked = TrainingExample.objects.get(source_interaction_id=tickets.ids["disliked"], kind="binary")
    assert disliked.label is False
    assert disliked.duplicate_of is None
    assert not DuplicateConflict.objects.filter(example_b=disliked).exists()
    assert not DuplicateConflict.objects.filter(example_a=disliked).exists()


@pytest.mark.django_db
def test_the_api_lists_both_examples_and_resolves_through_the_service(tickets, make_api):
    curate(task="tickets", since="2000-01-01")
    api = make_api(scopes=("admin",))
    body = api.get("/api/v1/curation/conflicts", {"task": "tickets", "status": "open"}).json()
    row = next(r for r in body["results"] if r["kind"] == "sft")
    assert row["example_a"]["target"] == ticket(2)[1]
    assert row["example_b"]["target"] == tickets.wrong
    assert {"prompt", "tier", "quality_score", "in_datasets"} <= set(row["example_b"])
    assert (row["example_a"]["in_datasets"], row["example_b"]["in_datasets"]) == (True, False)
    assert make_api(scopes=("read", "ingest")).get("/api/v1/curation/conflicts").status_code == 403
    assert api.get("/api/v1/curation/conflicts", {"status": "maybe"}).status_code == 400
    assert api.post(f"/api/v1/curation/conflicts/{row['id']}/resolve", {"keep": "some"}).status_code == 400
    resolved = api.post(f"/api/v1/curation/conflicts/{row['id']}/resolve", {"keep": "b"}, format="json")
    assert resolved.status_code == 200
    assert (resolved.json()["status"], resolved.json()["kept"], resolved.json()["example_b"]["in_datasets"]) == ("resolved", "b", True)
    assert not _in_datasets(tickets.sft("fixed"))
    assert api.post(f"/api/v1/curation/conflicts/{row['id']}/resolve", {"keep": "a"}).status_code == 409
    curate(task="tickets", since="2000-01-01")
    assert _in_datasets(tickets.sft("wrong"))
    assert DuplicateConflict.objects.get(pk=row["id"]).status == "resolved"
    assert not DuplicateConflict.objects.filter(kind="sft", status="open").exists()


@pytest.mark.django_db
def test_keeping_both_survives_later_runs(tickets, make_api):
    curate(task="tickets", since="2000-01-01")
    api = make_api(scopes=("admin",))
    conflict = DuplicateConflict.objects.get(kind="sft")
    assert api.post(f"/api/v1/curation/conflicts/{conflict.pk}/resolve", {"keep": "both"}).status_code == 200
    curate(task="tickets", since="2000-01-01")
    assert _in_datasets(tickets.sft("fixed"))
    assert _in_datasets(tickets.sft("wrong"))
    assert list(DuplicateConflict.objects.filter(kind="sft").values_list("status", "kept")) == [("resolved", "both")]


@pytest.mark.django_db
def test_a_task_can_keep_both_sides_of_every_conflict_in_its_datasets(tickets):
    CurationConfig.objects.create(task="tickets", hold_out_conflicts=False)
    run = curate(task="tickets", since="2000-01-01")
    assert _in_datasets(tickets.sft("wrong"))
    assert DuplicateConflict.objects.filter(kind="sft", status="open").count() == 1
    assert run.counts.get("conflicts_held_out", 0) == 0


@pytest.mark.django_db
def test_the_admin_shows_both_examples_and_resolves(tickets, client):
    client.force_login(User.objects.create_superuser("staff", "", "pw"))
    curate(task="tickets", since="2000-01-01")
    conflict = DuplicateConflict.objects.get(kind="sft")
    assert client.get("/admin/curation/duplicateconflict/?status__exact=open").status_code == 200
    page = client.get(f"/admin/curation/duplicateconflict/{conflict.pk}/change/").content.decode()
    assert "Both examples" in page
    assert "&quot;refund&quot;" in page
    assert "&quot;replacement&quot;" in page
    client.post("/admin/curation/duplicateconflict/", {"action": "keep_a", "_selected_action": [conflict.pk]})
    conflict.refresh_from_db()
    assert (conflict.status, conflict.kept, conflict.resolved_by) == ("resolved", "a", "admin:staff")
    wrong = tickets.sft("wrong")
    assert (wrong.tier, wrong.review_status, wrong.reviewed_by.username) == ("reject", "rejected", "staff")


@pytest.mark.django_db
def test_erasing_a_subject_leaves_no_conflict_of_theirs(tickets):
    curate(task="tickets", since="2000-01-01")
    assert DuplicateConflict.objects.filter(example_b__source_interaction_id=tickets.ids["wrong"]).exists()
    ingest.subject_erase(client=tickets.client, user_id="wrong-user", requested_by="test")
    assert not DuplicateConflict.objects.filter(example_b__source_interaction_id=tickets.ids["wrong"]).exists()
    assert DuplicateConflict.objects.filter(status="open").count() == 0
    assert tables_containing(tickets.wrong) == {}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_contrast_and_conflicts_are_the_same_whatever_the_number_of_workers(settings, monkeypatch):
    from curation.services import runs

    tickets = Tickets()
    monkeypatch.setattr(runs, "CHUNK", 2)

    def snapshot() -> tuple[list, list]:
        links = sorted(TrainingExample.objects.values_list("key", "duplicate_of__key"))
        pairs = sorted(DuplicateConflict.objects.values_list("example_a__key", "example_b__key", "reason", "similarity"))
        return links, pairs

    snapshots = []
    for workers in (1, 2, 3):
        TrainingExample.objects.all().delete()
        settings.CURATION_WORKERS = workers
        assert curate(since="2000-01-01").status == "succeeded"
        snapshots.append(snapshot())
    assert snapshots[0][1]
    assert all(s == snapshots[0] for s in snapshots)
    assert tickets.sft("wrong").duplicate_of == tickets.sft("fixed")
