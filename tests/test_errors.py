"""Errors on API paths answer the platform's JSON shape ({"detail", "code", "errors"?}); a 500
carries an error id that the log line with the traceback also names. HTML paths keep Django's pages."""

from __future__ import annotations

import logging

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import override_settings
from django.urls import path
from rest_framework.test import APIClient

from learning_platform import urls as project_urls

pytestmark = pytest.mark.django_db


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug the client cannot see")


# This module doubles as a URLconf: the project's routes, its error handlers, and two that fail.
urlpatterns = [
    path("api/v1/boom", _boom),
    path("v1/boom", _boom),
    path("html-boom", _boom),
    *project_urls.urlpatterns,
]
handler400, handler404, handler500 = project_urls.handler400, project_urls.handler404, project_urls.handler500


def assert_error_shape(response, status: int, code: str) -> dict:
    """The platform's shape under /api/, OpenAI's ({"error": {"message", "code", ...}}) under /v1/."""
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if response.wsgi_request.path.startswith("/v1/"):
        body = {"detail": body["error"]["message"], **body["error"]}
    assert body["code"] == code
    assert body["detail"]
    return body


@pytest.fixture
def raw(api):
    api.raise_request_exception = False
    return api


@pytest.mark.parametrize("url", ["/api/v1/no-such-thing", "/api/v1/interactions/not-a-uuid", "/v1/nothing", "/api/"])
def test_an_unknown_api_path_answers_a_json_404(raw, url):
    assert_error_shape(raw.get(url), 404, "not_found")


def test_an_unknown_html_path_keeps_the_html_404(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_method_an_api_view_lacks_answers_a_json_405(raw):
    assert_error_shape(raw.delete("/api/v1/interactions"), 405, "method_not_allowed")
    assert_error_shape(raw.put("/api/v1/interactions/batch", {}), 405, "method_not_allowed")


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize("url", ["/api/v1/boom", "/v1/boom"])
def test_a_crash_on_an_api_path_answers_json_with_an_error_id_that_is_logged(url, caplog):
    client = APIClient(raise_request_exception=False)
    with caplog.at_level(logging.ERROR, logger="learning_platform.errors"):
        body = assert_error_shape(client.get(url), 500, "server_error")
    assert "bug" not in str(body), "the exception's text stays in the log"
    assert set(body) - {"error_id"} <= {"detail", "code", "message", "type", "param"}
    error_id = body["error_id"]
    assert error_id in body["detail"]
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert logged[0].exc_info[0] is RuntimeError


@override_settings(ROOT_URLCONF=__name__)
def test_a_crash_on_an_html_path_keeps_the_html_500():
    response = APIClient(raise_request_exception=False).get("/html-boom")
    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")


def test_a_serializer_validation_error_answers_the_shape_with_field_errors(raw):
    body = assert_error_shape(raw.post("/api/v1/experiments", {"sample_rate": "x"}), 400, "invalid")
    assert "sample_rate" in body["errors"]


def test_a_malformed_body_answers_the_shape(raw):
    body = assert_error_shape(raw.post("/api/v1/interactions", b"{", content_type="application/json"), 400, "parse_error")
    assert "JSON" in body["detail"]


def test_a_missing_scope_answers_the_shape(make_api):
    reader = make_api(scopes=("read",))
    assert_error_shape(reader.post("/api/v1/interactions", {"input_text": "x"}), 403, "permission_denied")


def test_a_control_character_in_a_v1_query_answers_openais_shape(raw):
    body = assert_error_shape(raw.get("/v1/models?x=%00"), 400, "invalid")
    assert body["param"] == "x"


def test_a_suspicious_host_on_an_api_path_answers_a_json_400(client, settings):
    settings.ALLOWED_HOSTS = ["testserver"]
    response = client.get("/api/v1/interactions", HTTP_HOST="evil.example")
    assert_error_shape(response, 400, "invalid")
