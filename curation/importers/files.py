"""A JSON Lines file, read line by line, into interactions with the feedback each record implies.

Memory stays flat in the file's size: one chunk of records at a time. Each record becomes an
`ImportItem` whose idempotency key is the content hash of what it stores, so importing the same
file twice (or the same record from two files, in any format) stores it once.
"""

from __future__ import annotations

import gc
import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings

from interactions.imports import REFUSED, ImportItem, interaction_import_batch
from interactions.models import ApiClient

from . import formats

CHUNK = 1000
YOUNG_OBJECTS = 100_000  # new objects between young collections while importing (Python's default: 700)
REPORT_LINES = 1000  # refused lines kept with their reasons (all are counted)
SOURCES = ("staff", "user")


@dataclass
class Report:
    """What an import did (or, dry, would do): counts and the first refused lines with reasons."""

    counts: Counter[str] = field(default_factory=Counter)
    refused: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, line: int, reason: str) -> None:
        self.counts[REFUSED] += 1
        if len(self.refused) < REPORT_LINES:
            self.refused.append({"line": line, "reason": reason})

    def as_dict(self) -> dict[str, Any]:
        return {"counts": dict(self.counts), "refused": list(self.refused)}


def _key(task: str, body: dict[str, Any]) -> str:
    digest = hashlib.sha256(orjson.dumps([task, body], option=orjson.OPT_SORT_KEYS)).hexdigest()
    return f"import-{digest}"


def item_for(parsed: formats.Parsed, *, task: str, source: str, metadata: dict[str, Any] | None = None) -> ImportItem:
    """The interaction and feedback a record implies: an SFT answer approved (a thumb up), a
    pair as two candidates with a choice, a KTO completion with its thumb."""
    interaction: dict[str, Any] = {"task": task, "messages": parsed.prompt, "output_text": parsed.target}
    interaction["metadata"] = {"imported": parsed.kind, **(metadata or {})}
    if parsed.kind == "preference":
        interaction["candidates"] = [{"text": parsed.target, "rank": 0}, {"text": parsed.rejected, "rank": 1}]
        feedback = [{"kind": "choice", "candidate_rank": 0, "source": source}]
    else:
        thumb = "down" if parsed.label is False else "up"
        feedback = [{"kind": "thumb", "thumb": thumb, "source": source}]
    interaction["idempotency_key"] = _key(task, {"interaction": interaction, "feedback": feedback})
    return ImportItem(interaction, feedback)


def _reason(errors: dict[str, Any]) -> str:
    parts = []
    for name, problems in errors.items():
        text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else _reason(problems)
        parts.append(f"{name}: {text}")
    return ", ".join(parts)


@contextmanager
def collector_eased() -> Iterator[None]:
    """The garbage collector out of an import's way, and back as it was after.

    Each chunk's records live long enough to reach the oldest generation, so its full scans
    ran again and again over every object of the process (Django, the apps: a fifth of an
    import's Python time at 50,000 records). Objects that exist before are frozen (not freed,
    only not scanned), and a young collection waits for more new objects than a chunk holds
    (garbage in cycles, which an import hardly makes, is still collected: rarely)."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], YOUNG_OBJECTS), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


def read_lines(path: Path) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line, bytes read so far) of each non-blank line, streamed."""
    done = 0
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            done += len(line)
            if line.strip():
                yield number, line, done


class FileImport:
    """One pass over a file: parse, chunk, store (or not), report."""

    def __init__(self, *, client: ApiClient, task: str, fmt: str, source: str, dry_run: bool) -> None:
        self.client, self.task, self.fmt, self.source, self.dry_run = client, task, fmt, source, dry_run
        self.report = Report()
        self.max_bytes = settings.MAX_TEXT_BYTES * 4

    def parse(self, number: int, line: bytes) -> ImportItem | None:
        if len(line) > self.max_bytes:
            self.report.refuse(number, f"The line is longer than {self.max_bytes} bytes.")
            return None
        try:
            name, parsed = formats.parse(orjson.loads(line), self.fmt)
        except orjson.JSONDecodeError as exc:
            self.report.refuse(number, f"Not JSON: {exc}")
            return None
        except formats.RecordError as exc:
            self.report.refuse(number, str(exc))
            return None
        self.report.counts[f"format:{name}"] += 1
        return item_for(parsed, task=self.task, source=self.source)

    def flush(self, chunk: list[tuple[int, ImportItem]]) -> None:
        first_line: dict[str, int] = {}
        unique = []
        for number, item in chunk:
            key = item.interaction["idempotency_key"]
            if key in first_line:
                self.report.counts["duplicate"] += 1  # the same record twice in this file
                continue
            first_line[key] = number
            unique.append((number, item))
        results = interaction_import_batch(client=self.client, items=[i for _, i in unique], store=not self.dry_run)
        for (number, _), result in zip(unique, results, strict=True):
            if result.status == REFUSED:
                self.report.refuse(number, _reason(result.errors))
            else:
                self.report.counts[result.status] += 1

    def run(self, path: Path, on_chunk: Callable[[int, int], None] | None = None) -> Report:
        """Import every line; `on_chunk(bytes done, bytes in all)` after each chunk."""
        with collector_eased():
            return self._run(path, on_chunk)

    def _run(self, path: Path, on_chunk: Callable[[int, int], None] | None) -> Report:
        size = path.stat().st_size
        chunk: list[tuple[int, ImportItem]] = []
        done = 0
        for number, line, done in read_lines(path):
            self.report.counts["read"] += 1
            item = self.parse(number, line)
            if item is not None:
                chunk.append((number, item))
            if len(chunk) >= CHUNK:
                self.flush(chunk)
                chunk = []
                if on_chunk:
                    on_chunk(done, size)
        if chunk:
            self.flush(chunk)
        if on_chunk:
            on_chunk(size, size)
        return self.report
