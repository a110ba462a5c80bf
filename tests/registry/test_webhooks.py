"""Lifecycle events go out as JSON POSTs from the task queue, with retries, never blocking."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from registry import services
from registry.models import ActiveModel
from tests.registry.test_lifecycle import fake_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def receiver():
    """A real HTTP server that fails its first `failures` requests with 500."""
    state = {"bodies": [], "failures": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if state["failures"] > 0:
                state["failures"] -= 1
                self.send_response(500)
            else:
                state["bodies"].append(body)
                self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/hook"
    yield state
    server.shutdown()


def test_each_lifecycle_event_is_posted_with_retries(settings, receiver, django_capture_on_commit_callbacks):
    settings.WEBHOOK_URLS, settings.WEBHOOK_BACKOFF_SECONDS = [receiver["url"]], 0
    receiver["failures"] = 2  # delivered on the third attempt
    version = fake_version("support", 1)
    with django_capture_on_commit_callbacks(execute=True):
        services.version_approve(version=version, actor="staff", reason="arena")
        services.version_promote(version=version, actor="staff", reason="go")
    assert [b["event"]["action"] for b in receiver["bodies"]] == ["approve", "promote"]
    promote = receiver["bodies"][1]["event"]
    assert (promote["to_version"], promote["actor"], promote["reason"]) == (version.name, "staff", "go")


def test_an_unreachable_webhook_never_blocks_a_promotion(settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_URLS, settings.WEBHOOK_BACKOFF_SECONDS, settings.WEBHOOK_TIMEOUT = ["http://127.0.0.1:9/nowhere"], 0, 1
    version = fake_version("support", 1, status="approved")
    with django_capture_on_commit_callbacks(execute=True):
        services.version_promote(version=version, actor="staff")
    assert ActiveModel.objects.get(task="support").version == version
    from registry.models import LifecycleEvent
    from registry.tasks import send_webhooks

    assert "failed after 3 attempts" in send_webhooks(LifecycleEvent.objects.get(action="promote").pk)
