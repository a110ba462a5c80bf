"""Serving as one service: route -> lessons and memory -> generate -> log -> announce. Both doors
(/api/v1/generate and /v1/chat/completions) call `serve()`; they only validate the request and
shape the answer. Lessons (curation/lessons) may answer without generating (recall), or add the
nearest lessons and the person's preamble to what the model is sent; the interaction logs the
request as the client sent it, with metadata.lessons saying which lessons were used."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from curation.lessons.serving import Context, fitted, serving_context
from interactions import services as interactions

from ..models import ModelVersion
from ..services import RegistryError
from ..signals import generation_served
from . import Generation, ModelNotFound, generate, prompt_fits, resolve, route

REFUSED = (ModelVersion.Status.REJECTED, ModelVersion.Status.RETIRED)


@dataclass(frozen=True)
class Served:
    task: str
    version: ModelVersion
    generation: Generation
    interaction_id: str | None  # None when the subject opted out and nothing was stored

    @property
    def usage(self) -> dict[str, int]:
        prompt, completion = self.generation.prompt_tokens, sum(self.generation.completion_tokens)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }


def serve(
    *,
    client: Any,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float,
    n: int = 1,
    task: str = "",
    model: str = "",
    user_id: str | None = None,
    capabilities: list[str] | None = None,
) -> Served:
    """Answer `messages` with the version for `task` (routed) or `model` (a version name, or a task
    name routed like `task`), log the interaction and announce it (generation_served). Raises
    ModelNotFound for an unknown task or model and RegistryError for a version that may not serve
    (tainted, rejected, retired); a refused request stores nothing."""
    if bool(task) == bool(model):
        raise RegistryError("Name a task or a model.", fields={"task": ["Send task or model."]})
    who = {"client": client, "user_id": user_id}
    version = route(task, capabilities, **who) if task else resolve(model, **who)
    _refuse_unservable(version, field="task" if task else "model")
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "n": n}
    generation, context = answer(version=version, messages=messages, client=client, user_id=user_id, **sampling)
    logged = {"messages": messages, "generation": generation, "user_id": user_id, "metadata": context.metadata()}
    interaction_id = _log(client, version=version, **logged)
    generation_served.send(
        sender=ModelVersion,
        task=version.task,
        version=version,
        interaction_id=interaction_id,
        client=client,
        user_id=user_id,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    return Served(task=version.task, version=version, generation=generation, interaction_id=interaction_id)


def answer(
    *,
    version: ModelVersion,
    messages: list[dict[str, str]],
    max_tokens: int,
    temperature: float,
    n: int = 1,
    client: Any = None,
    user_id: str | None = None,
    subject: Any = None,
) -> tuple[Generation, Context]:
    """Lessons and memory, then generation (or the recalled lesson's answer), logging nothing:
    what serve() does for a request, and what a shadow trial's other side does for the logged
    request (`subject`: the person it was answered for)."""
    started = time.perf_counter()
    context = serving_context(
        task=version.task, messages=messages, client=client, user_id=user_id, dataset_id=version.dataset_id, subject=subject
    )
    if context.recalled is not None:
        return _recalled(version, context, n=n, started=started), context
    if context.shots:
        context = fitted(context, messages, lambda sent: prompt_fits(version=version, messages=sent, max_tokens=max_tokens))
    return generate(version=version, messages=context.messages, max_tokens=max_tokens, temperature=temperature, n=n), context


def _refuse_unservable(version: ModelVersion, *, field: str) -> None:
    if version.tainted:
        raise RegistryError(
            f"{version.name} is tainted and never serves ({version.tainted_reason}); promote another.",
            code="conflict",
            fields={field: [f"{version.name} is tainted."]},
        )
    if version.status in REFUSED:
        raise ModelNotFound(f"{version.name} is {version.status} and no longer serves.", field=field)


def _recalled(version: ModelVersion, context: Context, *, n: int, started: float) -> Generation:
    """A lesson's answer as the generation (the n answers asked for are all the lesson's)."""
    assert context.recalled is not None  # the caller checked
    answer = context.recalled.answer
    latency_ms = int((time.perf_counter() - started) * 1000)
    return Generation(version.name, [answer] * n, 0, [max(1, len(answer) // 4)] * n, latency_ms)


def _log(
    client: Any,
    *,
    version: ModelVersion,
    messages: list[dict[str, str]],
    generation: Generation,
    user_id: str | None,
    metadata: dict[str, Any],
) -> str | None:
    payload: dict[str, Any] = {
        "task": version.task,
        "metadata": metadata,
        "messages": messages,
        "output_text": generation.texts[0],
        "model_version": generation.version,
        "tokens_input": generation.prompt_tokens,
        "tokens_output": sum(generation.completion_tokens),
        "latency_ms": generation.latency_ms,
    }
    if len(generation.texts) > 1:
        payload["candidates"] = [{"text": text, "rank": rank} for rank, text in enumerate(generation.texts)]
    if user_id:
        payload["user_id"] = user_id
    recorded = interactions.interaction_record(client=client, payload=payload)
    return str(recorded.interaction.pk) if recorded.interaction else None


def models_available() -> list[dict[str, Any]]:
    """What /v1/chat/completions can be asked for, in OpenAI's model shape: each task with an
    untainted champion (its id is the task name), then the task's servable versions by name."""
    from ..models import ActiveModel

    champions = ActiveModel.objects.filter(version__tainted=False).order_by("task")
    tasks = list(champions.values_list("task", flat=True))
    versions = (
        ModelVersion.objects.filter(task__in=tasks, tainted=False)
        .exclude(status__in=REFUSED)
        .order_by("task", "number", "name")
        .values_list("task", "name", "created_at")
    )
    by_task: dict[str, list[tuple[str, int]]] = {task: [] for task in tasks}
    for task, name, created_at in versions:
        by_task[task].append((name, int(created_at.timestamp())))
    listed = []
    for task, names in by_task.items():
        listed.append(_model(task, min((created for _, created in names), default=0)))
        listed += [_model(name, created) for name, created in names]
    return listed


def _model(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "learning_platform"}
