"""Management commands, the admin, the task and the API documentation."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from interactions import tasks
from interactions.auth import client_cache
from interactions.models import ApiClient, ClientContext, ErasureRequest, Interaction, Subject
from tests.interactions.test_apis import URL, payload

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_once():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "mobile-app", "--scopes", "ingest,read", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert key.startswith("lp_")
    client = ApiClient.objects.get(name="mobile-app")
    assert key not in str(ApiClient.objects.values_list().get())
    assert client.scopes == ["ingest", "read"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.post(URL, payload(), format="json").status_code == 201


@pytest.mark.parametrize(
    ("args", "message"), [(["x", "--scopes", "root"], "Scopes must be among"), (["", "--scopes", "read"], "needs a name")]
)
def test_create_api_key_fails_with_one_readable_line(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_key", *args)


def test_a_duplicate_client_name_is_refused():
    call_command("create_api_key", "dup", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_api_key", "dup")


def test_the_purge_task_removes_only_context_past_retention(api):
    old = api.post(URL, payload(client_context={"ip_address": "10.0.0.1"})).json()["id"]
    new = api.post(URL, payload(client_context={"ip_address": "10.0.0.2"})).json()["id"]
    ClientContext.objects.filter(interaction_id=old).update(created_at=timezone.now() - timedelta(days=31))
    assert tasks.purge_client_context() == "purged 1 client contexts"
    assert list(ClientContext.objects.values_list("interaction_id", flat=True)) == [Interaction.objects.get(pk=new).pk]
    assert Interaction.objects.count() == 2


@override_settings(API_KEY_CACHE_SECONDS=60)
def test_key_rotation_takes_effect_at_once_despite_the_cache(api):
    client_cache.clear()
    assert api.get(URL).status_code == 200
    from interactions.services import api_client_rotate_key

    new_key = api_client_rotate_key(client=api.client_obj)
    assert api.get(URL).status_code == 401
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {new_key}")
    assert api.get(URL).status_code == 200


def test_schema_and_swagger_ui_are_served_offline(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    for path in ("/api/v1/interactions", "/api/v1/interactions/batch", "/api/v1/subjects/{user_id}"):
        assert path + ":" in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "drf_spectacular_sidecar/swagger-ui-dist" in docs.content.decode()
    assert not re.search(r"https?://(cdn|unpkg)", docs.content.decode())


@pytest.fixture
def staff(client):
    user = User.objects.create_superuser("staff", "", "pw")
    client.force_login(user)
    return client


def test_the_admin_creates_a_client_and_shows_its_key_once(staff):
    response = staff.post("/admin/interactions/apiclient/add/", {"name": "web", "scopes": ["ingest"], "is_active": "on"}, follow=True)
    assert response.status_code == 200
    key = re.search(r"(lp_[\w-]+)", response.content.decode()).group(1)
    client = ApiClient.objects.get(name="web")
    assert client.key_prefix == key[:10]
    assert staff.get(f"/admin/interactions/apiclient/{client.pk}/change/").content.decode().count(key) == 0


def test_the_admin_erases_a_subject_after_confirmation(staff, api):
    api.post(URL, payload(user_id="erase-me"))
    subject = Subject.objects.get()
    data = {"action": "erase", "_selected_action": [subject.pk]}
    confirm_page = staff.post("/admin/interactions/subject/", data)
    assert b"Erase 1 subject" in confirm_page.content
    assert Subject.objects.exists()
    staff.post("/admin/interactions/subject/", {**data, "confirm_submit": "Erase"})
    assert Subject.objects.exists(), "nothing is erased without ticking the confirmation"
    staff.post("/admin/interactions/subject/", {**data, "confirm_submit": "Erase", "confirm": "on"})
    assert not Subject.objects.exists()
    assert not Interaction.objects.exists()
    assert ErasureRequest.objects.get().requested_by == "admin:staff"


def test_the_admin_lists_interactions_with_filters(staff, api):
    created = api.post(URL, payload(candidates=[{"text": "c"}])).json()
    api.post(f"{URL}/{created['id']}/feedback", {"kind": "score", "score": 5})
    assert staff.get("/admin/interactions/interaction/?has_feedback=yes&task=support").status_code == 200
    page = staff.get(f"/admin/interactions/interaction/{created['id']}/change/")
    assert page.status_code == 200
    assert b"Candidates" in page.content


def test_setup_schedules_is_idempotent():
    from django_q.models import Schedule

    call_command("setup_schedules", stdout=io.StringIO())
    call_command("setup_schedules", stdout=io.StringIO())
    assert Schedule.objects.filter(name="purge-client-context").count() == 1
    assert Schedule.objects.get(name="daily-curation").func == "curation.tasks.run_daily_curation"


def test_bootstrap_creates_credentials_once(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    call_command("bootstrap", stdout=io.StringIO())
    assert User.objects.filter(is_superuser=True).count() == 1
    assert ApiClient.objects.count() == 1
    credentials = (tmp_path / "credentials.txt").read_text()
    key = re.search(r"key=(lp_\S+)", credentials).group(1)
    assert key in out.getvalue()
    assert (tmp_path / "credentials.txt").stat().st_mode & 0o777 == 0o600
