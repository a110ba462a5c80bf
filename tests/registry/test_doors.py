"""The registry's API and admin call the same lifecycle services."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from registry.models import ActiveModel, LifecycleEvent, ModelVersion
from tests.registry.test_lifecycle import fake_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("staff", "", "pw"))
    return client


def test_the_api_approves_promotes_and_rolls_back(make_api):
    api = make_api(scopes=("admin",))
    base = fake_version("support", 0, status="approved", metrics={"eval_loss": 2.0})
    v1 = fake_version("support", 1, parent=base, metrics={"eval_loss": 1.0})
    assert api.post(f"/api/v1/models/{base.name}/promote", {"reason": "start"}).status_code == 200
    refused = api.post(f"/api/v1/models/{v1.name}/promote", {"reason": "too early"})
    assert refused.status_code == 409
    assert "only an approved version" in refused.json()["detail"]
    assert api.post(f"/api/v1/models/{v1.name}/approve", {"reason": "arena"}).json()["status"] == "approved"
    assert api.post(f"/api/v1/models/{v1.name}/promote", {"reason": "better"}).json()["status"] == "active"
    assert api.get("/api/v1/models/active").json() == [
        {
            "task": "support",
            "version": v1.name,
            "revision": 2,
            "since": ActiveModel.objects.get().updated_at.isoformat().replace("+00:00", "Z"),
        }
    ]
    detail = api.get(f"/api/v1/models/{v1.name}").json()
    assert [a["name"] for a in detail["lineage"]["ancestry"]] == [v1.name, base.name]
    compare = api.get("/api/v1/models/compare", {"a": base.name, "b": v1.name}).json()
    assert compare["metrics"]["eval_loss"]["change_percent"] == -50.0
    assert api.post("/api/v1/models/rollback/support", {"reason": "regression"}).json()["name"] == base.name
    events = api.get("/api/v1/models/events", {"task": "support"}).json()
    assert [e["action"] for e in events][:3] == ["rollback", "promote", "approve"]
    assert events[0]["actor"].startswith("api:")
    assert api.get("/api/v1/models", {"task": "support"}).json()[0]["name"] == v1.name
    assert api.post("/api/v1/models/nope/promote").status_code == 404
    assert api.post(f"/api/v1/models/{v1.name}/explode").status_code == 404
    assert make_api(scopes=("read", "ingest")).post(f"/api/v1/models/{v1.name}/approve").status_code == 403


def test_the_admin_asks_for_a_reason_then_promotes_and_rolls_back(staff):
    base = fake_version("support", 0, status="approved")
    v1 = fake_version("support", 1, status="approved", parent=base)
    data = {"action": "promote", "_selected_action": [base.pk]}
    page = staff.post("/admin/registry/modelversion/", data)
    assert b"Reason" in page.content
    assert not ActiveModel.objects.exists()
    staff.post("/admin/registry/modelversion/", {**data, "confirm_submit": "Confirm", "reason": "first champion"})
    staff.post(
        "/admin/registry/modelversion/", {"action": "promote", "_selected_action": [v1.pk], "confirm_submit": "Confirm", "reason": "better"}
    )
    assert ActiveModel.objects.get().version == v1
    row = ActiveModel.objects.get()
    staff.post(
        "/admin/registry/activemodel/", {"action": "rollback", "_selected_action": [row.pk], "confirm_submit": "Confirm", "reason": "bad"}
    )
    assert ActiveModel.objects.get().version == base
    assert LifecycleEvent.objects.filter(action="rollback", actor="admin:staff", reason="bad").exists()
    genealogy = staff.get("/admin/registry/modelversion/genealogy/").content.decode()
    assert base.name in genealogy
    assert "└" in genealogy
    assert "★" in genealogy


def test_the_admin_says_why_a_tainted_version_cannot_be_approved(staff):
    tainted = fake_version("support", 3, tainted=True, tainted_reason="held erased data")
    response = staff.post(
        "/admin/registry/modelversion/",
        {"action": "approve", "_selected_action": [tainted.pk], "confirm_submit": "Confirm", "reason": "x"},
        follow=True,
    )
    assert b"tainted and can never be approved" in response.content
    assert ModelVersion.objects.get(pk=tainted.pk).status == "candidate"
