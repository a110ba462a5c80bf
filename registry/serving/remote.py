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


def generate(
    version: ModelVersion, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, n: int
) -> tuple[list[str], int, list[int]]:
    body = {"model": version.name, "messages": messages, "max_tokens": max_tokens, "temperature": temperature, "n": n}
    request = urllib.request.Request(  # noqa: S310  (the URL is an operator setting)
        settings.SERVING_REMOTE_URL.rstrip("/") + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.SERVING_REMOTE_API_KEY}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.SERVING_REMOTE_TIMEOUT) as response:  # noqa: S310
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise RegistryError(
            f"The serving server answered {exc.code}: {exc.read()[:300].decode(errors='replace')}", code="conflict"
        ) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        raise RegistryError(f"The serving server at {settings.SERVING_REMOTE_URL} is unreachable: {exc}", code="conflict") from None
    texts = [choice["message"]["content"] for choice in sorted(answer["choices"], key=lambda c: c["index"])]
    usage = answer.get("usage") or {}
    completion = usage.get("completion_tokens", 0)
    return texts, usage.get("prompt_tokens", 0), [completion // max(1, len(texts))] * len(texts)
