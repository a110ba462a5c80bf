"""The remote server and the versions' LoRA adapters on it (vLLM started with --enable-lora and
VLLM_ALLOW_RUNTIME_LORA_UPDATING=True): which names it serves (GET /models), loading a version's
adapter under the version's name (POST /load_lora_adapter) and unloading it (POST
/unload_lora_adapter). The platform manages adapters only when SERVING_REMOTE_ADAPTER_ROOT says
where the server sees ARTIFACTS_DIR; otherwise the server is trusted to know every version by its
name (another learning_platform, or vLLM started with --lora-modules).

Two paths load an adapter: registry.tasks.sync_remote_adapter, queued after a registration,
promotion or rollback commits (retiring, rejecting or tainting a version unloads it), and
`model_for`, asked before every request, which loads a version the server does not list (once per
process: the list is cached SERVING_REMOTE_LIST_SECONDS), so a sync that failed is repaired by the
version's first request. A load answered "already loaded" (another process won) is a success.

One httpx client per process keeps connections to the server open between requests (the client
is thread-safe; it is made on first use, so after a fork each process has its own)."""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from django.conf import settings

from ..models import LifecycleEvent, ModelVersion
from ..services import RegistryError

logger = logging.getLogger(__name__)
A, S = LifecycleEvent.Action, ModelVersion.Status
LOAD_ON = (A.REGISTER, A.PROMOTE, A.ROLLBACK)
NEVER_SERVES = (S.REJECTED, S.RETIRED)


class RemoteError(RegistryError):
    """The remote server was unreachable or refused; `status` is its HTTP status (None when it
    never answered)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message, code="conflict")
        self.status = status


@cache
def http() -> httpx.Client:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    return httpx.Client(limits=limits, follow_redirects=False)


def send(
    url: str,
    api_key: str,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
) -> httpx.Response:
    """One request to the server at `url` (a base URL such as http://vllm:8000/v1); raises
    RemoteError when it cannot be reached. The caller judges the status."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        return http().request(
            method,
            url.rstrip("/") + path,
            json=body,
            headers=headers,
            timeout=settings.SERVING_REMOTE_TIMEOUT,
        )
    except httpx.TransportError as exc:  # refused, reset, DNS, timeouts
        reason = f"{type(exc).__name__}: {exc}"
        raise RemoteError(f"The server at {url} is unreachable: {reason}") from None


def refused(url: str, response: httpx.Response) -> RemoteError:
    answered = f"{response.status_code}: {response.text[:300]}"
    return RemoteError(f"The server at {url} answered {answered}", status=response.status_code)


def managed() -> bool:
    """Whether the platform loads and unloads the remote server's adapters."""
    return settings.SERVING_BACKEND == "remote" and bool(settings.SERVING_REMOTE_ADAPTER_ROOT)


def base_name(version: ModelVersion) -> str:
    """The name the remote server serves the plain base model (v0) under."""
    if settings.SERVING_REMOTE_BASE_MODEL:
        return str(settings.SERVING_REMOTE_BASE_MODEL)
    return version.base_model if managed() else version.name


def server_path(version: ModelVersion) -> str:
    """Where the server sees the version's adapter: SERVING_REMOTE_ADAPTER_ROOT + its path under
    ARTIFACTS_DIR (the same files on a shared volume, mounted elsewhere)."""
    adapter, artifacts = Path(version.adapter_path).resolve(), Path(settings.ARTIFACTS_DIR).resolve()
    if not adapter.is_relative_to(artifacts):
        where = f"{version.name}'s adapter {version.adapter_path} is not under ARTIFACTS_DIR ({artifacts})"
        raise RegistryError(f"{where}: the remote server cannot see it.", code="conflict")
    return posixpath.join(settings.SERVING_REMOTE_ADAPTER_ROOT, adapter.relative_to(artifacts).as_posix())


class _Listed:
    """The names one server serves, as this process last heard them. The lock covers refreshing
    the list and loading: a list fetched while a load was under way cannot hide that load, so
    concurrent requests for a missing version load it once."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.names: set[str] = set()
        self.until = 0.0

    def has(self, name: str) -> bool:
        """Listed, and the list is fresh (no lock: the common case costs nothing)."""
        return time.monotonic() < self.until and name in self.names

    def current(self) -> set[str]:
        """The list, fetched again when stale; the caller holds the lock."""
        if time.monotonic() >= self.until:
            self.names = server_models(self.url)
            self.until = time.monotonic() + settings.SERVING_REMOTE_LIST_SECONDS
        return self.names


@cache
def _listed(url: str) -> _Listed:
    return _Listed(url)


def server_models(url: str) -> set[str]:
    """GET /models: the base model's name and every adapter the server at `url` has loaded."""
    response = send(url, settings.SERVING_REMOTE_API_KEY, "GET", "/models")
    if response.is_error:
        raise refused(url, response)
    try:
        return {str(model["id"]) for model in response.json()["data"]}
    except (ValueError, KeyError, TypeError):
        raise RemoteError(f"The server at {url} answered no model list: {response.text[:100]!r}") from None


def forget(version: ModelVersion) -> None:
    """The server no longer serves `version` (it answered 404: restarted, or unloaded by hand)."""
    _listed(settings.SERVING_REMOTE_URL).names.discard(version.name)


def model_for(version: ModelVersion) -> str:
    """The `model` to ask the server for, after loading the version's adapter if the server does
    not list it (managed adapters only)."""
    if not version.adapter_path:
        return base_name(version)
    listed = _listed(settings.SERVING_REMOTE_URL)
    if not managed() or listed.has(version.name):
        return version.name
    with listed.lock:
        if version.name not in listed.current():  # another thread may have loaded it meanwhile
            adapter_load(version)
    return version.name


def adapter_load(version: ModelVersion) -> str:
    """POST /load_lora_adapter {lora_name, lora_path}; "already loaded" counts as loaded."""
    url = settings.SERVING_REMOTE_URL
    body = {"lora_name": version.name, "lora_path": server_path(version)}
    response = send(url, settings.SERVING_REMOTE_API_KEY, "POST", "/load_lora_adapter", body)
    if response.status_code == 400 and "already" in response.text:  # vLLM: "has already been loaded"
        outcome = "already loaded"
    elif response.is_error:
        raise refused(url, response)
    else:
        outcome = "loaded"
    _listed(url).names.add(version.name)
    logger.info("remote adapter %s %s from %s", version.name, outcome, body["lora_path"])
    return f"{version.name}: {outcome}"


def adapter_unload(version: ModelVersion) -> str:
    """POST /unload_lora_adapter {lora_name}; a name the server does not have (404) is unloaded."""
    url = settings.SERVING_REMOTE_URL
    body = {"lora_name": version.name}
    response = send(url, settings.SERVING_REMOTE_API_KEY, "POST", "/unload_lora_adapter", body)
    if response.is_error and response.status_code != 404:
        raise refused(url, response)
    _listed(url).names.discard(version.name)
    return f"{version.name}: {'not loaded' if response.is_error else 'unloaded'}"


def adapter_sync(*, event: LifecycleEvent) -> str:
    """After a lifecycle change: load the version's adapter when it was registered, promoted or
    rolled back to; unload it when it can no longer serve (retired, rejected, tainted)."""
    version = event.to_version
    if not managed() or version is None or not version.adapter_path:
        return "no adapter to load or unload"
    version.refresh_from_db()  # what it is now, not when the change was queued
    if version.tainted or version.status in NEVER_SERVES:
        return adapter_unload(version)
    if event.action in LOAD_ON:
        return adapter_load(version)
    return f"{version.name}: nothing to do after {event.action}"
