from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from curation.models import CurationRun, Dataset, TrainingExample
from tests.curation.test_pipeline import curate

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("staff", "", "pw"))
    return client


def test_examples_are_filterable_and_show_why_they_scored(staff, mix):
    curate()
    assert staff.get("/admin/curation/trainingexample/?tier__exact=gold&kind__exact=sft&review_status__exact=pending").status_code == 200
    example = TrainingExample.objects.filter(tier="gold").first()
    page = staff.get(f"/admin/curation/trainingexample/{example.pk}/change/").content.decode()
    assert "Why this score" in page
    assert "weighted mean" in page


def test_bulk_approve_and_reject(staff, mix):
    curate()
    bronze = list(TrainingExample.objects.filter(tier="bronze").values_list("pk", flat=True))
    staff.post("/admin/curation/trainingexample/", {"action": "approve", "_selected_action": bronze})
    assert set(TrainingExample.objects.filter(pk__in=bronze).values_list("tier", "review_status")) == {("gold", "approved")}
    staff.post("/admin/curation/trainingexample/", {"action": "reject", "_selected_action": bronze[:1]})
    assert TrainingExample.objects.get(pk=bronze[0]).tier == "reject"


def test_a_draft_dataset_is_created_and_frozen_from_the_admin(staff, mix):
    curate()
    staff.post("/admin/curation/dataset/add/", {"task": "support", "name": "weekly", "kind": "sft", "filters": '{"min_tier": "bronze"}'})
    draft = Dataset.objects.get(name="weekly")
    assert draft.status == "draft"
    staff.post("/admin/curation/dataset/", {"action": "freeze", "_selected_action": [draft.pk]})
    draft.refresh_from_db()
    assert draft.status == "frozen"
    assert draft.stats["count"] > 0
    assert b"Stats" in staff.get(f"/admin/curation/dataset/{draft.pk}/change/").content


def test_a_run_is_started_from_the_admin(staff, mix, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        staff.post("/admin/curation/curationrun/add/", {"task": "support"})
    run = CurationRun.objects.get()
    assert run.status == "succeeded"
    assert run.requested_by == "admin:staff"
    assert b"examples_created" in staff.get(f"/admin/curation/curationrun/{run.pk}/change/").content
    assert staff.get("/admin/curation/knowledgegap/").status_code == 200
