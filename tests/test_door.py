"""The door holds: the admin login limit (django-axes, through the real login form), logs that
never show a user id from a path (a live gunicorn's access log, Django's request log), and a key
deactivated in one process refused by the very next request to another (a live gunicorn)."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from interactions.models import ApiClient, Interaction
from learning_platform.redaction import RedactFilter, redact
from tests.factories import ApiClientFactory
from tests.test_run_platform import ROOT, _database_url, _free_port, _wait_for

LOGIN = "/admin/login/"
ATTACKER, STAFF_DESK = "203.0.113.9", "198.51.100.4"


def _login(client, password: str, *, ip: str = ATTACKER, username: str = "staff"):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"}, REMOTE_ADDR=ip)


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("staff", "", "the-right-one")


def test_ten_wrong_passwords_lock_the_login_and_the_11th_is_refused_even_when_right(client, staff):
    answers = [_login(client, f"guess-{n}") for n in range(1, 11)]
    assert [a.status_code for a in answers[:9]] == [200] * 9
    assert all(b"Please enter the correct username and password" in a.content for a in answers[:9])
    assert answers[9].status_code == 429, "the 10th wrong password locks username + IP"
    eleventh = _login(client, "the-right-one")
    assert eleventh.status_code == 429
    assert b"too many login attempts" in eleventh.content
    assert "_auth_user_id" not in client.session


def test_the_lock_holds_one_username_from_one_address_and_staff_can_lift_it(client, staff):
    User.objects.create_superuser("colleague", "", "theirs")
    for n in range(10):
        _login(client, f"guess-{n}")
    assert _login(client, "theirs", username="colleague").status_code == 302, "another username from that address"
    client.logout()
    assert _login(client, "the-right-one", ip=STAFF_DESK).status_code == 302, "the same username from elsewhere"
    client.logout()
    assert _login(client, "the-right-one").status_code == 429
    call_command("axes_reset_ip_username", ATTACKER, "staff", stdout=io.StringIO())
    assert _login(client, "the-right-one").status_code == 302
    assert client.session["_auth_user_id"] == str(staff.pk)


def test_the_redaction_takes_user_ids_out_of_paths_and_queries_and_keeps_the_rest():
    assert redact('"GET /api/v1/subjects/alice%20b/export?x=1 HTTP/1.1" 200') == (
        '"GET /api/v1/subjects/{user_id}/export?x=1 HTTP/1.1" 200'
    )
    assert redact("GET /api/v1/interactions?task=t&user_id=bob&page_size=2") == (
        "GET /api/v1/interactions?task=t&user_id={user_id}&page_size=2"
    )
    assert redact("/api/v1/interactions?user%5Fid=carol") == "/api/v1/interactions?user%5Fid={user_id}"
    assert redact("POST /api/v1/interactions/5/feedback?a=b") == "POST /api/v1/interactions/5/feedback?a=b"
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "%s: %s",
        ("Not Found", "/api/v1/subjects/dave"),
        None,
    )
    assert RedactFilter().filter(record)
    assert record.getMessage() == "Not Found: /api/v1/subjects/{user_id}"


# --- a live server: `manage.py run_platform` (gunicorn, 2 workers, Redis cache) ---------------

REDIS = "redis://127.0.0.1:6379/11"  # this file's own database on the machine's Redis
SECRET_USER = "alice-7f3e9"


@pytest.fixture(scope="module")
def live(django_db_setup, django_db_blocker, tmp_path_factory):
    """run_platform against the test database and Redis, its stdout (the access log) and stderr
    (every other log line) in files."""
    import redis

    folder = tmp_path_factory.mktemp("door")
    redis.Redis.from_url(REDIS).flushdb()
    with django_db_blocker.unblock():
        database = _database_url()
    env = {
        **os.environ,
        "DATABASE_URL": database,
        "DEBUG": "true",
        "Q_SYNC": "false",
        "Q_WORKERS": "1",
        "REDIS_URL": REDIS,
        "API_KEY_CACHE_SECONDS": "300",
        "API_THROTTLE_INGEST": "4/min",
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    port = _free_port()
    out, err = folder / "stdout.log", folder / "stderr.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        command = [
            sys.executable,
            "manage.py",
            "run_platform",
            "--bind",
            f"127.0.0.1:{port}",
            "--web-workers",
            "2",
        ]
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    try:
        assert _wait_for(lambda: _status(port, "GET", "/healthz") == 200, 60), err.read_text()
        yield SimpleNamespace(port=port, stdout=out, stderr=err)
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        redis.Redis.from_url(REDIS).flushdb()


def _status(port: int, method: str, path: str, key: str = "", body: dict | None = None) -> int:
    return _call(port, method, path, key, body)[0]


def _call(port: int, method: str, path: str, key: str = "", body: dict | None = None) -> tuple[int, dict[str, str]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {key}"} if key else {})}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (a fixed http URL)
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)
    except OSError:
        return 0, {}


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_live_servers_logs_never_show_a_user_id_from_a_path_or_query(live):
    key = ApiClientFactory(scopes=["admin"]).raw_key
    interaction = {"task": "door", "input_text": "hello", "output_text": "hi", "user_id": SECRET_USER}
    requests = [
        ("POST", "/api/v1/interactions", interaction, 201),
        ("GET", f"/api/v1/interactions?task=door&user_id={SECRET_USER}", None, 200),
        ("GET", f"/api/v1/subjects/{SECRET_USER}/export", None, 200),
        ("POST", f"/api/v1/subjects/{SECRET_USER}/opt-out", None, 200),
        ("DELETE", f"/api/v1/subjects/{SECRET_USER}", None, 200),
        ("GET", f"/api/v1/subjects/{SECRET_USER}/export", None, 404),  # Django logs "Not Found: <path>"
        ("GET", f"/api/v1/subjects/{SECRET_USER}/no-such-thing", None, 404),
    ]
    assert [_status(live.port, m, p, key, b) for m, p, b, _ in requests] == [s for *_, s in requests]
    redacted = [f"{m} {p.replace(SECRET_USER, '{user_id}')} HTTP/1.1" for m, p, _, _ in requests]
    assert _wait_for(lambda: all(line in live.stdout.read_text() for line in redacted), 10), live.stdout.read_text()
    assert "WARNING django.request Not Found: /api/v1/subjects/{user_id}/export" in live.stderr.read_text()
    for log in (live.stdout, live.stderr):
        assert SECRET_USER not in log.read_text()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_key_deactivated_in_this_process_is_refused_by_the_live_servers_very_next_request(live, settings, client):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS}}
    settings.API_KEY_CACHE_SECONDS = 300
    api_client = ApiClientFactory(scopes=["read"])
    key, here = api_client.raw_key, APIClient()
    here.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert [_status(live.port, "GET", "/api/v1/interactions", key) for _ in range(12)] == [200] * 12
    assert here.get("/api/v1/interactions").status_code == 200
    ApiClient.objects.filter(pk=api_client.pk).update(is_active=False)  # behind the platform's back
    assert here.get("/api/v1/interactions").status_code == 200, "the process cache is on: no query per request"
    ApiClient.objects.filter(pk=api_client.pk).update(is_active=True)

    client.force_login(User.objects.create_superuser("keeper", "", "pw"))
    change = reverse("admin:interactions_apiclient_change", args=[api_client.pk])
    saved = client.post(change, {"name": api_client.name, "scopes": ["read"], "_save": "Save"})  # is_active unticked
    assert saved.status_code == 302
    assert _status(live.port, "GET", "/api/v1/interactions", key) == 401
    assert [_status(live.port, "GET", "/api/v1/interactions", key) for _ in range(10)] == [401] * 10
    assert here.get("/api/v1/interactions").status_code == 401


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_live_servers_two_workers_share_one_throttle_budget(live):
    key = ApiClientFactory(scopes=["ingest"]).raw_key
    body = {"task": "door", "input_text": "hello", "output_text": "hi"}
    answers = [_call(live.port, "POST", "/api/v1/interactions", key, body) for _ in range(10)]
    assert [status for status, _ in answers] == [201] * 4 + [429] * 6, "API_THROTTLE_INGEST=4/min for both workers together"
    assert all(int(headers["Retry-After"]) >= 1 for _, headers in answers[4:])
    assert Interaction.objects.filter(task="door", client__key_prefix=key[:10]).count() == 4
