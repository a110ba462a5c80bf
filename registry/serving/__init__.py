"""Serving: which version answers (canary, router, champion) and the backends that generate.
The doors call service.serve() (route -> generate -> log -> announce). The local backend keeps
one base model per process and switches LoRA adapters per request (hot swap); heavy imports live
in local.py only."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from learning_platform.jsoncheck import CONTROL_CHARS

from ..models import ActiveModel, ModelVersion
from ..services import RegistryError, version_base, version_promote


@dataclass
class Generation:
    version: str
    texts: list[str]
    prompt_tokens: int
    completion_tokens: list[int] = field(default_factory=list)
    latency_ms: int = 0


class ModelNotFound(RegistryError):
    """Nothing can answer this task or model name (it has no data and no version)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, code="not_found", fields={field: [message]})
        self.field = field


def task_known(task: str) -> bool:
    """A task exists once the platform has a version or data (interactions) for it."""
    from interactions.models import Interaction

    return ModelVersion.objects.filter(task=task).exists() or Interaction.objects.filter(task=task).exists()


def champion(task: str) -> ModelVersion:
    """The version serving `task` now (one indexed query per request: a promotion or rollback
    reaches every process with its next request). A task without one starts on its base (v0):
    the serving doors ask `served_champion`, which refuses a task the platform does not know."""
    row = ActiveModel.objects.select_related("version").filter(task=task).first()
    if row is not None:
        return row.version
    from training.base_models import resolve_base_model

    base = version_base(task=task, base_model=resolve_base_model())
    with contextlib.suppress(RegistryError):  # another request made it champion first
        version_promote(
            version=base,
            actor="system",
            reason="first request: the base model serves until a version is promoted",
        )
    return ActiveModel.objects.select_related("version").get(task=task).version


def served_champion(task: str, *, field: str = "task") -> ModelVersion:
    """The champion for a request: a task without one starts on its base only when the platform
    knows it (task_known); else ModelNotFound, and nothing is written."""
    row = ActiveModel.objects.select_related("version").filter(task=task).first()
    if row is not None:
        return row.version
    if not task_known(task):
        raise ModelNotFound(f"No task or model named {task!r}: it has no data and no version.", field=field)
    return champion(task)


def route(
    task: str,
    capabilities: list[str] | None = None,
    *,
    client: Any = None,
    user_id: str | None = None,
    field: str = "task",
) -> ModelVersion:
    """The version for a request: a running canary's pick for this subject (registry.signals.
    choose_version), else the router's pick among the task's enabled routes (see
    registry/routing.py, with each version's stored statistics), else the champion; an unknown
    task raises ModelNotFound."""
    from .. import routing
    from ..models import ServingRoute
    from ..signals import choose_version
    from ..stats import stats_read

    answers = choose_version.send(sender=ModelVersion, task=task, client=client, user_id=user_id)
    for _, chosen_version in answers:
        if chosen_version is not None:
            return chosen_version  # type: ignore[no-any-return]
    routes = list(
        ServingRoute.objects.filter(task=task, enabled=True, version__tainted=False)
        .select_related("version")
        .order_by("version__created_at")
    )
    if not routes:
        return served_champion(task, field=field)
    stats = {row["version"]: row for row in stats_read(task=task, versions=[r.version.name for r in routes])}
    candidates = []
    for r in routes:
        row = stats.get(r.version.name, {})
        candidates.append(
            routing.Route(
                version=r.version.name,
                capabilities=frozenset(r.capabilities),
                priority=r.priority,
                trust=row.get("trust", 0.0),
                latency_p95_ms=row.get("latency_p95_ms"),
                error_rate=row.get("error_rate", 0.0),
            )
        )
    chosen = routing.pick(candidates, frozenset(capabilities or ()))
    return next(r.version for r in routes if chosen is not None and r.version.name == chosen.version)


def resolve(model: str, *, client: Any = None, user_id: str | None = None) -> ModelVersion:
    """OpenAI's `model` field: a version name, or a task name (routed like /api/v1/generate)."""
    version = ModelVersion.objects.filter(name=model).first()
    return version if version is not None else route(model, client=client, user_id=user_id, field="model")


def prompt_fits(*, version: ModelVersion, messages: list[dict[str, str]], max_tokens: int) -> bool:
    """Whether the prompt and the answer's budget fit the model's context window: the local
    backend counts the tokens; a remote server is trusted to know its own limits."""
    if settings.SERVING_BACKEND == "remote":
        return True
    from .local import fits

    return fits(version, messages, max_tokens)


def generate(
    *,
    version: ModelVersion,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float,
    n: int,
) -> Generation:
    start = time.perf_counter()
    if settings.SERVING_BACKEND == "remote":
        from . import remote

        answer = remote.generate
    else:
        from .local import backend

        answer = backend().generate
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "n": n}
    texts, prompt_tokens, completion_tokens = answer(version, messages, **sampling)
    latency_ms = int((time.perf_counter() - start) * 1000)
    # A model may emit control characters the platform refuses to store (U+0000 above all):
    # what is answered is what is logged, so they go from both.
    texts = [CONTROL_CHARS.sub("", text) for text in texts]
    return Generation(version.name, texts, prompt_tokens, completion_tokens, latency_ms)
