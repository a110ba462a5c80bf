"""A JSON Lines file, read line by line, into interactions with the feedback each record implies.

Memory stays flat in the file's size: one chunk of records at a time. Each record becomes an
`ImportItem` whose idempotency key is the content hash of what it stores, so importing the same
file twice (or the same record from two files, in any format) stores it once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import connection

from interactions.imports import REFUSED, ImportItem, ItemResult, interaction_import_batch
from interactions.models import ApiClient

from . import formats

CHUNK = 1000
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

    def _unique(self, chunk: list[tuple[int, ImportItem]]) -> list[tuple[int, ImportItem]]:
        first_line: dict[str, int] = {}
        unique = []
        for number, item in chunk:
            key = item.interaction["idempotency_key"]
            if key in first_line:
                self.report.counts["duplicate"] += 1  # the same record twice in this file
                continue
            first_line[key] = number
            unique.append((number, item))
        return unique

    def _store(self, unique: list[tuple[int, ImportItem]]) -> list[ItemResult]:
        return interaction_import_batch(client=self.client, items=[i for _, i in unique], store=not self.dry_run)

    def _count(self, unique: list[tuple[int, ImportItem]], results: list[ItemResult]) -> None:
        for (number, _), result in zip(unique, results, strict=True):
            if result.status == REFUSED:
                self.report.refuse(number, _reason(result.errors))
            else:
                self.report.counts[result.status] += 1

    def flush(self, chunk: list[tuple[int, ImportItem]]) -> None:
        """Store one chunk now (and count what happened to each record)."""
        unique = self._unique(chunk)
        self._count(unique, self._store(unique))

    def run(self, path: Path, on_chunk: Callable[[int, int], None] | None = None) -> Report:
        """Import every line; `on_chunk(bytes done, bytes in all)` after each stored chunk. While
        a chunk is written, the next one is parsed (see Writer)."""
        size = path.stat().st_size
        chunk: list[tuple[int, ImportItem]] = []
        writer = Writer(self._store)
        try:
            for number, line, done in read_lines(path):
                self.report.counts["read"] += 1
                item = self.parse(number, line)
                if item is not None:
                    chunk.append((number, item))
                if len(chunk) >= CHUNK:
                    self._written(writer.write(self._unique(chunk), done), size, on_chunk)
                    chunk = []
            if chunk:
                self._written(writer.write(self._unique(chunk), size), size, on_chunk)
            self._written(writer.wait(), size, on_chunk)
        finally:
            writer.close()
        if on_chunk:
            on_chunk(size, size)
        return self.report

    def _written(self, stored: Written | None, size: int, on_chunk: Callable[[int, int], None] | None) -> None:
        if stored is None:
            return
        unique, results, done = stored
        self._count(unique, results)
        if on_chunk:
            on_chunk(done, size)


Written = tuple[list[tuple[int, ImportItem]], list[ItemResult], int]


class Writer:
    """Stores chunks one at a time, in a thread with its own database connection when it may, so
    the next chunk is read and parsed while the database writes this one (on 2 cores: 1.3x the
    rows/s, benchmarks/imports.py). Not inside a transaction (the caller's rows would not be seen
    from another connection) and not on SQLite (one writer): there, each chunk is stored at once.
    Each chunk is still its own transaction, stored whole or refused record by record."""

    def __init__(self, store: Callable[[list[tuple[int, ImportItem]]], list[ItemResult]]) -> None:
        self.store = store
        overlap = connection.vendor == "postgresql" and not connection.in_atomic_block
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-writer") if overlap else None
        self.pending: tuple[list[tuple[int, ImportItem]], Future[list[ItemResult]], int] | None = None

    def write(self, unique: list[tuple[int, ImportItem]], done: int) -> Written | None:
        """Start storing `unique` (`done`: bytes read when it was complete); returns the chunk
        stored before it, with its results (None when there was none)."""
        if self.pool is None:
            return unique, self.store(unique), done
        previous = self.wait()
        self.pending = (unique, self.pool.submit(self.store, unique), done)
        return previous

    def wait(self) -> Written | None:
        """The chunk being stored, once it is (its failure raised here)."""
        if self.pending is None:
            return None
        unique, future, done = self.pending
        self.pending = None
        return unique, future.result(), done

    def close(self) -> None:
        if self.pool is not None:
            if self.pending is not None:
                wait([self.pending[1]])  # a failure in the reader: let the chunk being stored end
            self.pool.submit(_close_connection).result()  # the thread's own connection
            self.pool.shutdown()


def _close_connection() -> None:
    connection.close()  # the calling thread's (the proxy resolves per thread)
