"""What travels with exported weights: the lineage, a README card, an Ollama Modelfile."""

from __future__ import annotations

import json
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

from django.conf import settings

from curation.models import DatasetItem

from ..models import ModelVersion
from ..services import lineage

LIBRARIES = ("torch", "transformers", "peft", "trl", "safetensors")


def _library_versions() -> dict[str, str]:
    found = {}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def training_meta(version: ModelVersion) -> dict[str, Any]:
    """The adapter's own training_meta.json (written by the training child), with the
    registry's lineage and the version's metrics added."""
    path = Path(version.adapter_path) / "training_meta.json"
    meta = json.loads(path.read_text()) if path.exists() else {}
    job = version.training_job
    meta.setdefault("recipe", job.recipe if job else {})
    meta.setdefault("versions", job.library_versions if job else {})
    dataset = version.dataset
    if dataset is not None:
        meta.setdefault("dataset", {"id": dataset.pk, "name": str(dataset), "manifest_hash": dataset.manifest_hash})
    return {
        **meta,
        "version": version.name,
        "base_model": version.base_model,
        "metrics": version.metrics,
        "lineage": lineage(version=version),
    }


def _table(values: dict[str, Any]) -> str:
    rows = "\n".join(f"| {k} | {json.dumps(v, default=str) if isinstance(v, dict | list) else v} |" for k, v in sorted(values.items()))
    return "| name | value |\n|---|---|\n" + (rows or "| (none) | |")


def model_card(version: ModelVersion, meta: dict[str, Any], fmt: str) -> str:
    dataset = meta.get("dataset") or {}
    how = {
        "adapter": "A PEFT LoRA adapter: load the base model, then `PeftModel.from_pretrained(base, this_folder)`.",
        "merged": "Base and adapter merged: `AutoModelForCausalLM.from_pretrained(this_folder)`, no peft needed.",
        "ollama": "`ollama create <name> -f Modelfile` in this folder, then `ollama run <name>`.",
    }[fmt]
    return "\n\n".join([
        f"# {version.name}",
        how,
        f"- base model: `{version.base_model}`\n- task: `{version.task}`\n- status: {version.status}\n"
        f"- parent: {version.parent.name if version.parent else 'none'}\n"
        f"- dataset: {dataset.get('name', 'none')} (manifest {dataset.get('manifest_hash', '-')})",
        "## Metrics\n\n" + _table(version.metrics),
        "## Recipe\n\n" + _table(meta.get("recipe") or {}),
        "## Library versions\n\nTraining:\n\n" + _table(meta.get("versions") or {}) + "\n\nExport:\n\n" + _table(_library_versions()),
    ]) + "\n"  # fmt: skip


def system_prompt(version: ModelVersion) -> str:
    """The system message the version's training data opened with most often ('' when none)."""
    if version.dataset_id is None:
        return ""
    counts: Counter[str] = Counter()
    for prompt in DatasetItem.objects.filter(dataset_id=version.dataset_id).values_list("prompt", flat=True)[:5000]:
        if prompt and prompt[0].get("role") == "system":
            counts[prompt[0].get("content", "")] += 1
    return counts.most_common(1)[0][0] if counts else ""


def _go(text: str) -> str:
    """Literal text inside a Go template (a `{{` in it would open an action)."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(parts: dict[str, Any]) -> str:
    """The chat template in Ollama's Go template syntax, from what it wraps around each role's
    content. Ollama puts the SYSTEM line into .Messages, so the system turn is a branch too."""
    roles = parts.get("roles", {})
    if "user" not in roles:
        return "{{ .Prompt }}"

    def turn(role: str) -> str:
        before, after = roles.get(role, roles["user"])
        return f"{_go(before)}{{{{ .Content }}}}{_go(after)}"

    return (
        '{{ range .Messages }}{{ if eq .Role "assistant" }}' + turn("assistant")
        + '{{ else if eq .Role "system" }}' + turn("system")
        + "{{ else }}" + turn("user") + "{{ end }}{{ end }}"
        + _go(parts.get("generation_prompt", ""))
    )  # fmt: skip


def _quoted(text: str) -> str:
    return json.dumps(text)


def modelfile(version: ModelVersion, parts: dict[str, Any], *, weights: str) -> str:
    """An Ollama Modelfile (https://github.com/ollama/ollama/blob/main/docs/modelfile.md)."""
    lines = [f"# {version.name} (task {version.task}), exported by the learning platform", f"FROM {weights}"]
    template = go_template(parts)
    lines.append(f'TEMPLATE """{template}"""')
    system = system_prompt(version)
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines.append("PARAMETER temperature 0")  # what POST /api/v1/generate answers with by default
    lines.append(f"PARAMETER num_predict {settings.SERVING_MAX_TOKENS}")
    if parts.get("context_length"):
        lines.append(f"PARAMETER num_ctx {parts['context_length']}")
    lines += [f"PARAMETER stop {_quoted(stop)}" for stop in parts.get("stop", [])]
    return "\n".join(lines) + "\n"
