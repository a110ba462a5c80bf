"""Any OpenAI-compatible server as the serving backend (vLLM with LoRA adapters loaded under
their version names, or another learning_platform): the version name is sent as `model`, the
plain base model (v0) under the server's base model name. With SERVING_REMOTE_ADAPTER_ROOT set the
platform loads the adapters itself (registry/serving/adapters.py)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ..models import ModelVersion
from ..services import RegistryError
from . import adapters
from .adapters import RemoteError, http, refused, send

__all__ = ["RemoteError", "chat_completion", "generate", "http"]


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
    Raises RemoteError (a RegistryError, 409) with the reason when the server is unreachable or
    refuses."""
    body = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": temperature,
        "n": n,
    }
    response = send(url, api_key, "POST", "/chat/completions", body)
    if response.is_error:
        raise refused(url, response)
    try:
        answer = response.json()
    except ValueError:
        raise RemoteError(
            f"The server at {url} answered something that is not JSON: {response.text[:100]!r}",
            status=response.status_code,
        ) from None
    if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
        raise RemoteError(f"The server at {url} answered no chat completion.", status=response.status_code)
    return answer


def _complete(version: ModelVersion, messages: list[dict[str, str]], **sampling: Any) -> dict[str, Any]:
    """The chat completion for `version`; when the server answers 404 for a managed adapter it
    has lost (restarted, or unloaded by hand) since this process listed it, it is loaded again,
    once, and asked again."""
    url, key = settings.SERVING_REMOTE_URL, settings.SERVING_REMOTE_API_KEY
    try:
        return chat_completion(url, key, adapters.model_for(version), messages, **sampling)
    except RemoteError as exc:
        if exc.status != 404 or not version.adapter_path or not adapters.managed():
            raise
    adapters.forget(version)
    return chat_completion(url, key, adapters.model_for(version), messages, **sampling)


def generate(
    version: ModelVersion, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, n: int
) -> tuple[list[str], int, list[int]]:
    answer = _complete(version, messages, max_tokens=max_tokens, temperature=temperature, n=n)
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
