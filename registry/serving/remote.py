"""Any OpenAI-compatible server as the serving backend (vLLM with LoRA adapters loaded under
their version names, or another learning_platform): the version name is sent as `model`.

One httpx client per process keeps connections to the server open between requests (the
client is thread-safe; it is made on first use, so after a fork each process has its own)."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
from django.conf import settings

from ..models import ModelVersion
from ..services import RegistryError


@cache
def http() -> httpx.Client:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
    return httpx.Client(limits=limits, follow_redirects=False)


def chat_completion(
    url: str,
    api_key: str,
    model: str,
    messages: list[dict[str, str]],
    *,
    max_tokens: int,
    temperature: float,
    n: int = 1,
) -> dict[str, Any]:
    """POST an OpenAI chat completion to `url` (a base URL ending before /chat/completions).
    Raises RegistryError (409) with the reason when the server is unreachable or refuses."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "n": n,
    }
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = http().post(
            url.rstrip("/") + "/chat/completions",
            json=body,
            headers=headers,
            timeout=settings.SERVING_REMOTE_TIMEOUT,
        )
    except httpx.TransportError as exc:  # refused, reset, DNS, timeouts
        reason = f"{type(exc).__name__}: {exc}"
        raise RegistryError(f"The server at {url} is unreachable: {reason}", code="conflict") from None
    if response.is_error:
        answered = f"{response.status_code}: {response.text[:300]}"
        raise RegistryError(f"The server at {url} answered {answered}", code="conflict")
    try:
        answer = response.json()
    except ValueError:
        raise RegistryError(
            f"The server at {url} answered something that is not JSON: {response.text[:100]!r}",
            code="conflict",
        ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
        raise RegistryError(f"The server at {url} answered no chat completion.", code="conflict")
    return answer


def generate(
    version: ModelVersion, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, n: int
) -> tuple[list[str], int, list[int]]:
    answer = chat_completion(
        settings.SERVING_REMOTE_URL,
        settings.SERVING_REMOTE_API_KEY,
        version.name,
        messages,
        max_tokens=max_tokens,
        temperature=temperature,
        n=n,
    )
    try:
        choices = sorted(answer["choices"], key=lambda c: c["index"])
        texts = [str(choice["message"]["content"] or "") for choice in choices]
    except (KeyError, TypeError) as exc:
        raise RegistryError(f"The server's choices lack {exc}.", code="conflict") from None
    if not texts:
        raise RegistryError("The server's chat completion has no choices.", code="conflict")
    usage = answer.get("usage") or {}
    completion = usage.get("completion_tokens", 0)
    return texts, usage.get("prompt_tokens", 0), [completion // max(1, len(texts))] * len(texts)
