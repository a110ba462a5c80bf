"""POST /api/v1/imports: a multipart upload becomes a queued import run; GET shows its outcome."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from curation import tasks
from curation.importers.runs import upload_dir
from curation.models import ImportRun
from interactions.models import Interaction
from tests.curation.test_import_data import HAND_WRITTEN

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def artifacts(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


def upload(api, body: bytes, **fields):
    data = {"file": SimpleUploadedFile("data.jsonl", body), "task": "uploaded", **fields}
    return api.post("/api/v1/imports", data, format="multipart")


def test_an_upload_is_queued_run_by_the_worker_and_its_copy_removed(api, django_capture_on_commit_callbacks):
    body = "".join(json.dumps(r) + "\n" for r in HAND_WRITTEN.values()).encode() + b"{broken\n"
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = upload(api, body)
    assert response.status_code == 202, response.json()
    run_id = response.json()["id"]
    assert response.json()["status"] == "queued"
    assert len(queued) == 1
    assert len(list(upload_dir().iterdir())) == 1
    tasks.execute_import(run_id)  # what the django-q2 worker runs
    detail = api.get(f"/api/v1/imports/{run_id}").json()
    assert detail["status"] == "succeeded"
    assert detail["counts"]["created"] == len(HAND_WRITTEN)
    assert detail["refused"] == [{"line": len(HAND_WRITTEN) + 1, "reason": detail["refused"][0]["reason"]}]
    assert Interaction.objects.filter(task="uploaded", client=api.client_obj).count() == len(HAND_WRITTEN)
    assert list(upload_dir().iterdir()) == []  # the raw upload does not outlive the run


def test_an_upload_larger_than_the_request_limit_is_accepted(api, settings):
    settings.MAX_REQUEST_BYTES = 1024
    body = b"".join(json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}).encode() + b"\n" for i in range(200))
    assert len(body) > settings.MAX_REQUEST_BYTES
    assert upload(api, body).status_code == 202
    assert api.post("/api/v1/interactions", {"input_text": "x" * 2000}, format="json").status_code == 413


def test_a_bad_task_or_format_is_refused_and_nothing_is_queued(api):
    assert upload(api, b"{}\n", task="Bad Slug").status_code == 400
    assert upload(api, b"{}\n", format="csv").status_code == 400


def test_another_client_cannot_read_the_run(api, make_api):
    run_id = upload(api, b"{}\n").json()["id"]
    assert make_api(("ingest",)).get(f"/api/v1/imports/{run_id}").status_code == 404


def test_an_import_needs_the_ingest_scope(make_api):
    assert upload(make_api(("read",)), io.BytesIO(b"{}\n").read()).status_code == 403


def test_the_admin_page_queues_an_upload_and_the_run_shows_its_outcome(client, django_user_model, api):
    staff = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(staff)
    body = "".join(json.dumps(r) + "\n" for r in HAND_WRITTEN.values()).encode()
    data = {
        "upload": SimpleUploadedFile("d.jsonl", body),
        "task": "admin-up",
        "client": api.client_obj.pk,
        "format": "auto",
        "source": "staff",
    }
    response = client.post("/admin/curation/importrun/add/", data)
    assert response.status_code == 302, response.content[:2000]
    run = ImportRun.objects.get(task="admin-up")
    tasks.execute_import(run.pk)
    page = client.get(f"/admin/curation/importrun/{run.pk}/change/")
    assert page.status_code == 200
    assert b"succeeded" in page.content
