"""A model version out of the platform, for the runtimes people use.

| format | what `out` holds |
|---|---|
| adapter | the PEFT adapter, its training_meta.json (lineage) and README.md (a model card) |
| merged | base + adapter merged (merge_and_unload): safetensors, tokenizer, chat template |
| ollama | merged weights under weights/, a Modelfile (FROM ./weights, TEMPLATE, SYSTEM, PARAMETER) |

The merge needs torch and peft: it runs in a child process (`python registry/export/merge.py`),
never in the process that asks, so the web process can serve an export without loading torch.
`merged` loads with AutoModelForCausalLM and no peft installed. A tainted version is never exported.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings

from training.base_models import resolve_base_model

from ..models import ModelVersion
from ..services import RegistryError
from .card import model_card, modelfile, training_meta

FORMATS = ("adapter", "merged", "ollama")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")
MERGE_TIMEOUT = 3600
# run as a script, not as part of the package: the child imports nothing of Django or the project
MERGE_SCRIPT = Path(__file__).with_name("merge.py")


def _check(version: ModelVersion, fmt: str) -> None:
    if fmt not in FORMATS:
        raise RegistryError(f"Unknown export format {fmt!r}.", fields={"format": [f"One of {', '.join(FORMATS)}."]})
    if version.tainted:
        raise RegistryError(
            f"{version.name} is tainted and is never exported: {version.tainted_reason or 'an erasure removed its data'}",
            code="conflict",
        )
    if not version.adapter_path or not (Path(version.adapter_path) / "adapter_config.json").exists():
        raise RegistryError(f"{version.name} has no adapter on disk to export.", code="conflict")


def _copy_adapter(version: ModelVersion, out: Path) -> None:
    source = Path(version.adapter_path)
    for item in source.iterdir():
        if item.is_file() and not item.name.startswith("."):
            shutil.copy2(item, out / item.name)


def _merge(version: ModelVersion, out: Path) -> dict[str, Any]:
    """Run the merge child; returns what it found about the chat template and stop tokens."""
    with tempfile.TemporaryDirectory(prefix="merge-") as work:
        spec = Path(work) / "spec.json"
        base = resolve_base_model(version.base_model)
        spec.write_text(json.dumps({"base": base, "adapter": version.adapter_path, "out": str(out)}))
        done = subprocess.run(
            [sys.executable, str(MERGE_SCRIPT), str(spec)],
            capture_output=True, text=True, timeout=MERGE_TIMEOUT, check=False, cwd=settings.BASE_DIR,
        )  # fmt: skip
        if done.returncode != 0:
            raise RegistryError(f"The merge of {version.name} failed: {done.stderr.strip()[-2000:]}")
        return json.loads((Path(work) / "parts.json").read_text())


def version_export(*, version: ModelVersion, fmt: str, out: Path) -> Path:
    """Write `version` in `fmt` into the empty (or new) folder `out`; returns it."""
    _check(version, fmt)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise RegistryError(f"{out} is not empty.", fields={"out": ["Name an empty or new folder."]})
    meta = training_meta(version)
    if fmt == "adapter":
        _copy_adapter(version, out)
        (out / "training_meta.json").write_text(json.dumps(meta, indent=2, default=str))
    elif fmt == "merged":
        _merge(version, out)
    else:
        parts = _merge(version, out / "weights")
        (out / "Modelfile").write_text(modelfile(version, parts, weights="./weights"))
    (out / "README.md").write_text(model_card(version, meta, fmt))
    return out


def version_export_tar(*, version: ModelVersion, fmt: str) -> Iterator[bytes]:
    """The export as a tar stream, written chunk by chunk (the folder is removed at the end).
    Checks run before the first chunk, so a refusal is an error answer, not a broken stream."""
    _check(version, fmt)
    work = Path(tempfile.mkdtemp(prefix="export-", dir=_export_root()))
    try:
        version_export(version=version, fmt=fmt, out=work / f"{version.name}-{fmt}")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return _tar_chunks(work, f"{version.name}-{fmt}")


def _export_root() -> Path:
    root = Path(settings.ARTIFACTS_DIR) / "exports"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _tar_chunks(work: Path, name: str) -> Iterator[bytes]:
    """A ustar/pax stream written by hand, file by file in 1 MiB reads: memory stays flat
    whatever the size of the weights."""
    try:
        for path in sorted((work / name).rglob("*")):
            info = tarfile.TarInfo(str(path.relative_to(work)))
            info.mtime, info.mode = int(path.stat().st_mtime), 0o755 if path.is_dir() else 0o644
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                yield info.tobuf(tarfile.PAX_FORMAT)
                continue
            info.size = path.stat().st_size
            yield info.tobuf(tarfile.PAX_FORMAT)
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk
            if info.size % tarfile.BLOCKSIZE:
                yield tarfile.NUL * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE)
        yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)
    finally:
        shutil.rmtree(work, ignore_errors=True)
