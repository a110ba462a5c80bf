"""API keys: `Authorization: Bearer <key>`, scopes per view, throttling per client."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from typing import Any

from django.conf import settings
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.request import Request

from .models import ApiClient

KEY_PREFIX = "lp_"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough (a slow one would cost every request).
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class _ClientCache:
    """Per-process cache of key hash -> client, for API_KEY_CACHE_SECONDS. A deactivated key
    stops working within that time on every process (0 turns the cache off)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiClient | None]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> ApiClient | None:
        ttl = settings.API_KEY_CACHE_SECONDS
        now = time.monotonic()
        hit = self._entries.get(key_hash)
        if ttl and hit and now - hit[0] < ttl:
            return hit[1]
        client = ApiClient.objects.filter(key_hash=key_hash, is_active=True).first()
        if ttl:
            with self._lock:
                if len(self._entries) > 10_000:
                    self._entries.clear()
                self._entries[key_hash] = (now, client)
        return client

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


client_cache = _ClientCache()


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


class ClientRateThrottle(throttling.SimpleRateThrottle):
    """API_THROTTLE_RATE per API client (shared across processes when REDIS_URL is set).

    The rate is read per request, so an empty setting turns throttling off without a restart
    of the view classes (DRF binds throttle classes at import).
    """

    scope = "client"

    def __init__(self) -> None:
        self.rate = None

    def allow_request(self, request: Request, view: Any) -> bool:
        self.rate = settings.API_THROTTLE_RATE or None
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiClient):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.pk}
