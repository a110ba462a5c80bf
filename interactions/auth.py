"""API keys: `Authorization: Bearer <key>` and scopes per view (throttling: throttling.py)."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request

from .models import ApiClient

KEY_PREFIX = "lp_"
GENERATION_KEY = "lp:api-clients:generation"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough (a slow one would cost every request).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _shared_cache() -> bool:
    """Whether Django's cache is one every process sees (Redis), not a per-process memory."""
    return not isinstance(caches["default"], LocMemCache | DummyCache)


class _ClientCache:
    """Key hash -> client, remembered per process for at most API_KEY_CACHE_SECONDS, and only
    while the shared cache's generation token is the one the entry was stored under.

    Every change to a client (save, delete, rotation: `clear()`) writes a new token, so each
    process drops its entries on its very next request: one cache GET per request (Redis: one
    round trip) instead of one query. Without a shared cache (the local-memory default) no
    process could hear of another's change, so every request looks the key up in the database
    (one indexed query) and a deactivation is refused everywhere at once either way.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, str, ApiClient]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> ApiClient | None:
        ttl = settings.API_KEY_CACHE_SECONDS
        if not ttl or not _shared_cache():
            return _lookup(key_hash)
        token, now = _generation(), time.monotonic()
        hit = self._entries.get(key_hash)
        if hit and hit[1] == token and now - hit[0] < ttl:
            return hit[2]
        client = _lookup(key_hash)
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            if client is None:
                self._entries.pop(key_hash, None)  # unknown keys are not remembered (a new one must work at once)
            else:
                self._entries[key_hash] = (now, token, client)
        return client

    def clear(self) -> None:
        """Forget every process's entries: now, and again when the transaction commits (a process
        that reads the old row before the commit must not keep it under the new token)."""
        with self._lock:
            self._entries.clear()
        if _shared_cache():
            _new_generation()
            transaction.on_commit(_new_generation)


def _lookup(key_hash: str) -> ApiClient | None:
    return ApiClient.objects.filter(key_hash=key_hash, is_active=True).first()


def _generation() -> str:
    token = cache.get(GENERATION_KEY)
    if token is None:  # never written, or evicted: a fresh token, so no old entry stays valid
        cache.add(GENERATION_KEY, uuid.uuid4().hex, timeout=None)
        token = cache.get(GENERATION_KEY)
    return str(token)


def _new_generation() -> None:
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)


client_cache = _ClientCache()


@receiver([post_save, post_delete], sender=ApiClient, dispatch_uid="api-client-cache")
def _client_changed(sender: type[ApiClient], instance: ApiClient, **kwargs: Any) -> None:
    client_cache.clear()  # deactivation, scopes, rotation: seen by every process's next request


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiClient, ApiClient] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, key = header.partition(" ")
        if keyword != self.keyword or not key.strip():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        client = client_cache.get(hash_api_key(key.strip()))
        if client is None:
            raise exceptions.AuthenticationFailed("Unknown or inactive API key.")
        return client, client

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class HasScope(permissions.BasePermission):
    """Views declare `required_scopes = {"GET": "read", "POST": "ingest", ...}`."""

    message = "This API key lacks the scope this request needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        client = request.auth
        if not isinstance(client, ApiClient):
            return False
        scope = getattr(view, "required_scopes", {}).get(request.method, "admin")
        if not client.has_scope(scope):
            self.message = f"This API key lacks the '{scope}' scope."
            return False
        return True
