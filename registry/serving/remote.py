"""Any OpenAI-compatible server as the serving backend (vLLM with LoRA adapters loaded under
their version names, or another learning_platform): the version name is sent as `model`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from django.conf import settings

from ..models import ModelVersion
from ..services import RegistryError


def chat_completion(
    url: str, api_key: str, model: str, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, n: int = 1
) -> dict[str, Any]:
    """POST an OpenAI chat completion to `url` (a base URL ending before /chat/completions)."""
    body = {"model": model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature, "n": n}
    request = urllib.request.Request(  # noqa: S310  (the URL is an operator setting)
        url.rstrip("/") + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.SERVING_REMOTE_TIMEOUT) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RegistryError(
            f"The server at {url} answered {exc.code}: {exc.read()[:300].decode(errors='replace')}", code="conflict"
        ) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise RegistryError(f"The server at {url} is unreachable: {exc}", code="conflict") from None
    return answer


def generate(
    version: ModelVersion, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, n: int
) -> tuple[list[str], int, list[int]]:
    answer = chat_completion(
        settings.SERVING_REMOTE_URL, settings.SERVING_REMOTE_API_KEY, version.name, messages,
        max_tokens=max_tokens, temperature=temperature, n=n,
    )  # fmt: skip
    texts = [choice["message"]["content"] for choice in sorted(answer["choices"], key=lambda c: c["index"])]
    usage = answer.get("usage") or {}
    completion = usage.get("completion_tokens", 0)
    return texts, usage.get("prompt_tokens", 0), [completion // max(1, len(texts))] * len(texts)
