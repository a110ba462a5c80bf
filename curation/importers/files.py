"""A JSON Lines file, read line by line, into interactions with the feedback each record implies.

Memory stays flat in the file's size: one chunk of records at a time. Each record becomes an
`ImportItem` whose idempotency key is the content hash of what it stores, so importing the same
file twice (or the same record from two files, in any format) stores it once.

A file of more than one span (SPAN_LINES lines) is imported by IMPORT_WORKERS processes, a span
each at a time: half of a one-process import is waiting for PostgreSQL, and the spans are
independent (each chunk is its own transaction; a record repeated in two spans is a replay, as in
one process). In the calling process instead when one worker is asked for, inside a transaction
(a test's: forked workers would not see its rows) or on SQLite (one writer at a time).
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from django.conf import settings
from django.db import connection

from interactions.imports import REFUSED, ImportItem, interaction_import_batch
from interactions.models import ApiClient
from learning_platform.jobs.workers import can_fork, in_workers

from . import formats

CHUNK = 1000
SPAN_LINES = 5 * CHUNK  # lines a worker process imports at a time
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

    def merge(self, other: Report) -> None:
        """Another span's report into this one (refused lines in line order, the first kept)."""
        self.counts.update(other.counts)
        self.refused = sorted(self.refused + other.refused, key=lambda r: r["line"])[:REPORT_LINES]

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


class Span(NamedTuple):
    """Whole lines of a file: bytes [start, end), the first one's number."""

    start: int
    end: int
    first_line: int


def spans(path: Path, lines: int) -> Iterator[Span]:
    """The file cut every `lines` lines, streamed."""
    start = done = count = 0
    with path.open("rb") as handle:
        for line in handle:
            done += len(line)
            count += 1
            if count % lines == 0:
                yield Span(start, done, count - lines + 1)
                start = done
    if done > start:
        yield Span(start, done, count - (count % lines) + 1)


def read_lines(path: Path, span: Span | None = None) -> Iterator[tuple[int, bytes, int]]:
    """(line number, line, bytes read so far) of each non-blank line (of the span), streamed."""
    start, end, first = span or (0, None, 1)
    done = start
    with path.open("rb") as handle:
        handle.seek(start)
        for number, line in enumerate(handle, start=first):
            done += len(line)
            if line.strip():
                yield number, line, done
            if end is not None and done >= end:
                return


class FileImport:
    """One pass over a file: parse, chunk, store (or not), report."""

    def __init__(self, *, client: ApiClient, task: str, fmt: str, source: str, dry_run: bool) -> None:
        self.client, self.task, self.fmt, self.source, self.dry_run = client, task, fmt, source, dry_run
        self.report = Report()
        self.max_bytes = settings.MAX_TEXT_BYTES * 4
        self.processes: set[int] = set()  # the worker processes that imported spans (none: this one)

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
        """Import every line; `on_chunk(bytes done, bytes in all)` after each chunk (or span)."""
        size = path.stat().st_size
        with collector_eased():
            cut = spans(path, SPAN_LINES)
            head = list(itertools.islice(cut, 2))
            if len(head) > 1 and _in_workers():
                self._run_workers(path, itertools.chain(head, cut), size, on_chunk)
            else:
                self.run_span(path, None, (lambda done: on_chunk(done, size)) if on_chunk else None)
        if on_chunk:
            on_chunk(size, size)
        return self.report

    def run_span(self, path: Path, span: Span | None, on_chunk: Callable[[int], None] | None = None) -> Report:
        """Import the span's lines (all with None) in this process."""
        chunk: list[tuple[int, ImportItem]] = []
        for number, line, done in read_lines(path, span):
            self.report.counts["read"] += 1
            item = self.parse(number, line)
            if item is not None:
                chunk.append((number, item))
            if len(chunk) >= CHUNK:
                self.flush(chunk)
                chunk = []
                if on_chunk:
                    on_chunk(done)
        if chunk:
            self.flush(chunk)
        return self.report

    def _run_workers(self, path: Path, parts: Iterable[Span], size: int, on_chunk: Callable[[int, int], None] | None) -> None:
        options = (self.client.pk, self.task, self.fmt, self.source, self.dry_run, str(path))
        done = 0
        with closing(in_workers(_span_job, ((*options, span) for span in parts), settings.IMPORT_WORKERS)) as results:
            for span, report, pid in results:
                self.processes.add(pid)
                self.report.merge(report)
                done += span.end - span.start
                if on_chunk:
                    on_chunk(done, size)  # a cancel raised here terminates the workers


def _in_workers() -> bool:
    """Whether spans may go to worker processes (see the module's docstring)."""
    return settings.IMPORT_WORKERS > 1 and connection.vendor == "postgresql" and can_fork()


def _span_job(job: tuple[int, str, str, str, bool, str, Span]) -> tuple[Span, Report, int]:
    """In a worker process: one span imported, with its report (and which process it was)."""
    client_id, task, fmt, source, dry_run, path, span = job
    client = ApiClient.objects.get(pk=client_id)
    importer = FileImport(client=client, task=task, fmt=fmt, source=source, dry_run=dry_run)
    return span, importer.run_span(Path(path), span), os.getpid()
