"""django-q2 entry points of the registry."""

from __future__ import annotations

import json
import logging
import time

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from .models import LifecycleEvent

logger = logging.getLogger(__name__)


def event_payload(event: LifecycleEvent) -> dict[str, object]:
    return {
        "id": event.pk,
        "task": event.task,
        "action": event.action,
        "actor": event.actor,
        "reason": event.reason,
        "from_version": event.from_version.name if event.from_version else None,
        "to_version": event.to_version.name if event.to_version else None,
        "created_at": event.created_at,
    }


def refresh_version_stats(task: str = "") -> str:
    """Every minute (the refresh-version-stats schedule): the router's per-version statistics."""
    from .stats import stats_refresh

    return f"{stats_refresh(task=task)} version rows refreshed"


def run_retraining(retraining_id: int) -> str:
    """A retraining after an erasure (registry/erasure.py): derive the dataset, queue the job."""
    from .erasure import retraining_execute

    retraining = retraining_execute(retraining_id=retraining_id)
    return f"retraining {retraining.pk}: {retraining.status}, training job {retraining.training_job_id}"


def sync_remote_adapter(event_id: int) -> str:
    """After a lifecycle change committed (SERVING_REMOTE_ADAPTER_ROOT set): the remote server
    loads the version's adapter, or unloads one that no longer serves. A server that refuses is
    logged, never raised into the change: the version's first request loads it."""
    from .services import RegistryError
    from .serving.adapters import adapter_sync

    event = LifecycleEvent.objects.select_related("to_version").get(pk=event_id)
    try:
        return adapter_sync(event=event)
    except RegistryError as exc:
        logger.warning("remote adapter after %s of %s failed: %s", event.action, event.to_version, exc)
        return f"failed ({exc}); a request for the version loads it if it serves"


def _post(url: str, body: bytes) -> None:
    headers = {"Content-Type": "application/json"}
    httpx.post(url, content=body, headers=headers, timeout=settings.WEBHOOK_TIMEOUT).raise_for_status()


def send_webhooks(event_id: int) -> str:
    """POST the event to every WEBHOOK_URLS entry, retrying each up to WEBHOOK_RETRIES times with
    exponential backoff. Runs on the task queue, after the change committed: never blocks it."""
    event = LifecycleEvent.objects.select_related("from_version", "to_version").get(pk=event_id)
    body = json.dumps({"event": event_payload(event)}, cls=DjangoJSONEncoder).encode()
    report = []
    for url in settings.WEBHOOK_URLS:
        for attempt in range(1, settings.WEBHOOK_RETRIES + 1):
            try:
                _post(url, body)
                report.append(f"{url}: delivered (attempt {attempt})")
                break
            except httpx.HTTPError as exc:  # unreachable, timed out, or an error status
                logger.warning("webhook %s for event %s failed (attempt %s): %s", url, event_id, attempt, exc)
                if attempt == settings.WEBHOOK_RETRIES:
                    report.append(f"{url}: failed after {attempt} attempts ({exc})")
                else:
                    time.sleep(settings.WEBHOOK_BACKOFF_SECONDS * 2 ** (attempt - 1))
    return "; ".join(report)
