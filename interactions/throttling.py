"""Rate limits per API client: a burst and a sustained window per scope, generation counted in tokens.

Every request is counted against its view's scope (`API_THROTTLE_INGEST`, `_READ`, `_ADMIN`:
e.g. "100/s,3000/min"); a generation request (`/v1/chat/completions`, `/api/v1/generate`)
also costs n x max_tokens against `API_THROTTLE_GENERATION_TOKENS`. Each window is a sliding
window counter: the previous fixed window's count, weighted by the share of it still inside
the window, plus the current one's, so a client cannot double its rate at a window's edge.
Counters live in Django's cache under atomic `incr` (Redis with REDIS_URL: shared by every
process and host; the local-memory default counts per process).
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import exceptions, throttling
from rest_framework.request import Request

from .models import ApiClient

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# url names of the views that generate -> the body fields naming their max tokens, first wins
GENERATION_ROUTES = {
    "chat-completions": ("max_completion_tokens", "max_tokens"),
    "generate": ("max_tokens",),
}
MAX_N = 8
clock = time.time  # wall-clock seconds: every process and host must agree on the windows


class Window(NamedTuple):
    limit: int
    seconds: int
    rate: str


class Charge(NamedTuple):
    key: str
    cost: int
    timeout: int


def parse_rate(rate: str) -> Window:
    count, _, period = rate.partition("/")
    return Window(int(count), PERIODS[period[0]], rate)


def wait_seconds(*, limit: int, window: int, previous: int, current: int, cost: int, elapsed: float) -> float:
    """Seconds until `cost` more fits under `limit` in a sliding window that is `elapsed` seconds
    into its current fixed window (0: it fits now). `current` excludes `cost`; cost <= limit."""
    weight = 1 - elapsed / window
    if previous * weight + current + cost <= limit:
        return 0.0
    room = limit - current - cost
    if room >= 0:  # the previous window's share must fall to `room`
        return window * (1 - room / previous) - elapsed
    # only after this window becomes the previous one, and its share falls far enough
    return (window - elapsed) + window * (1 - (limit - cost) / current)


def required_scope(view: Any, method: str) -> str:
    """The scope HasScope checks for this view and method (admin when the view names none)."""
    return getattr(view, "required_scopes", {}).get(method, "admin")


def generation_tokens(request: Request) -> int:
    """n x max_tokens a generation request asks for, as its serializer will read them (malformed
    values count as the defaults: the serializer refuses them anyway)."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.url_name not in GENERATION_ROUTES or request.method != "POST":
        return 0
    data = request.data if isinstance(request.data, dict) else {}
    ceiling = max(settings.SERVING_MAX_TOKENS, 1)
    asked = next((data[name] for name in GENERATION_ROUTES[match.url_name] if data.get(name)), None)
    return min(_count(data.get("n"), 1), MAX_N) * min(_count(asked, min(64, ceiling)), ceiling)


def _count(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _add(key: str, delta: int, timeout: int) -> int:
    """Atomic add to a counter that may not exist yet (Redis INCR, the local cache's lock)."""
    try:
        return cache.incr(key, delta)
    except ValueError:
        if cache.add(key, delta, timeout):
            return delta
        return cache.incr(key, delta)


class ClientRateThrottle(throttling.BaseThrottle):
    """The platform's one throttle (DEFAULT_THROTTLE_CLASSES). Over a limit it raises Throttled
    naming the limit; DRF answers 429 with Retry-After (whole seconds, at least 1)."""

    def allow_request(self, request: Request, view: Any) -> bool:
        client = request.auth
        if not isinstance(client, ApiClient):
            return True  # no key: the permission check has answered 401 already
        budgets = [(required_scope(view, request.method), 1)]
        tokens = generation_tokens(request)
        if tokens:
            budgets.append(("generation_tokens", tokens))
        _take(client.pk, budgets, clock())
        return True


def _windows(budget: str) -> list[Window]:
    return [parse_rate(rate) for rate in getattr(settings, f"API_THROTTLE_{budget.upper()}")]


def _take(client_pk: int, budgets: list[tuple[str, int]], now: float) -> None:
    """Charge every window of every budget, or none: if one refuses, refund them all."""
    plan = [(budget, window, min(cost, window.limit)) for budget, cost in budgets for window in _windows(budget)]
    if not plan:
        return
    base = f"lp:throttle:{client_pk}"
    indexes = [int(now // window.seconds) for _, window, _ in plan]
    previous_keys = [f"{base}:{b}:{w.seconds}:{i - 1}" for (b, w, _), i in zip(plan, indexes, strict=True)]
    charges = [Charge(f"{base}:{b}:{w.seconds}:{i}", c, 2 * w.seconds + 1) for (b, w, c), i in zip(plan, indexes, strict=True)]
    previous, totals = _charge(previous_keys, charges)
    for (budget, window, cost), index, previous_key, total in zip(plan, indexes, previous_keys, totals, strict=True):
        elapsed = now - index * window.seconds
        before = previous.get(previous_key, 0)
        wait = wait_seconds(
            limit=window.limit,
            window=window.seconds,
            previous=before,
            current=total - cost,
            cost=cost,
            elapsed=elapsed,
        )
        if wait > 0:
            _charge([], [charge._replace(cost=-charge.cost) for charge in charges])
            raise Refused(budget, window, wait)


def _charge(previous_keys: list[str], charges: list[Charge]) -> tuple[dict[str, int], list[int]]:
    """The previous windows' counts, and each current counter after its charge: one round trip
    on Redis (a pipeline of MGET, SET NX EX and INCRBY), atomic increments elsewhere."""
    backend = caches["default"]
    if not isinstance(backend, RedisCache):
        return cache.get_many(previous_keys), [_add(charge.key, charge.cost, charge.timeout) for charge in charges]
    pipe = backend._cache.get_client(write=True).pipeline(transaction=False)
    full = [backend.make_and_validate_key(key) for key in previous_keys]
    if full:
        pipe.mget(full)
    for charge in charges:
        key = backend.make_and_validate_key(charge.key)
        pipe.set(key, 0, ex=charge.timeout, nx=True)
        pipe.incrby(key, charge.cost)
    results = pipe.execute()
    counts = results[0] if full else []
    previous = {key: int(value) for key, value in zip(previous_keys, counts, strict=True) if value is not None}
    return previous, [int(total) for total in results[len(results) - 2 * len(charges) + 1 :: 2]]


class Refused(exceptions.Throttled):
    """429: names the budget and its rate, as `throttled` (the API's error shape)."""

    def __init__(self, budget: str, window: Window, wait: float) -> None:
        seconds = max(1, math.ceil(wait))
        what = "generation tokens (n x max_tokens)" if budget == "generation_tokens" else f"{budget} requests"
        super().__init__(wait=seconds, detail=f"Over this API key's rate of {window.rate} {what}.")
