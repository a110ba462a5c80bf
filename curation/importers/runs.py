"""Import runs: the job (learning_platform.jobs) that reads a file or a repository's history.

The command runs one in the foreground; the API stores the upload, creates the run and queues
it; the admin does the same from a form. All of them call these functions.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from interactions.models import ApiClient
from interactions.services import InteractionError, api_client_create
from learning_platform.jobs import JobCancelled, JobContext, job_dispatch, job_run

from ..models import GitImportCursor, ImportRun
from ..services.errors import CurationError
from . import files, formats, git
from .files import CHUNK, SOURCES, FileImport, Report, item_for

logger = logging.getLogger(__name__)
Progress = Callable[[float], None]
TASK_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
IMPORT_CLIENT = "import"


def upload_dir() -> Path:
    return Path(settings.ARTIFACTS_DIR) / "imports"


def import_client(*, name: str = IMPORT_CLIENT) -> ApiClient:
    """The client imported interactions are stored under (created with the ingest scope, its
    key thrown away, when it does not exist)."""
    client = ApiClient.objects.filter(name=name).first()
    if client is None:
        try:
            client, _key = api_client_create(name=name, scopes=["ingest"])
        except InteractionError:  # created concurrently
            client = ApiClient.objects.get(name=name)
    return client


def _check(task: str, fmt: str, source: str) -> None:
    fields: dict[str, list[str]] = {}
    if not TASK_RE.fullmatch(task or ""):
        fields["task"] = ["A slug: lower-case letters, digits, - and _ (64 at most)."]
    if fmt != "auto" and fmt not in formats.FORMATS:
        fields["format"] = [f"One of auto, {', '.join(formats.FORMATS)}."]
    if source not in SOURCES:
        fields["source"] = [f"One of {', '.join(SOURCES)}."]
    if fields:
        raise CurationError("The import is refused.", fields=fields)


def import_run_create(
    *, client: ApiClient, task: str, path: str, origin: str = ImportRun.Origin.FILE, fmt: str = "auto", source: str = "staff",
    dry_run: bool = False, file_name: str = "", options: dict[str, Any] | None = None, requested_by: str = "",
) -> ImportRun:  # fmt: skip
    _check(task, fmt, source)
    if not Path(path).exists():
        raise CurationError(f"{path} does not exist.", fields={"path": ["No such file or directory."]})
    return ImportRun.objects.create(
        client=client, task=task, path=path, origin=origin, format=fmt, source=source, dry_run=dry_run,
        file_name=file_name or Path(path).name, options=options or {}, requested_by=requested_by,
    )  # fmt: skip


def import_upload_save(*, upload: IO[bytes]) -> Path:
    """Copy an upload (Django spools big ones to a temporary file) under ARTIFACTS_DIR/imports,
    in chunks: the worker reads it from there, and the run deletes it when it ends."""
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{uuid.uuid4().hex}.jsonl"
    with target.open("wb") as out:
        shutil.copyfileobj(upload, out, length=1 << 20)
    return target


def import_run_start(**fields: Any) -> ImportRun:
    """Create a run and queue it on django-q2 once the row is committed."""
    with transaction.atomic():
        run = import_run_create(**fields)
        job_dispatch(job=run)
    return run


def import_run_execute(*, run_id: int, progress: Progress | None = None) -> ImportRun:
    """Run a queued import to its end through the job runner; a failure is recorded, then raised."""

    def work(context: JobContext) -> None:
        run: ImportRun = context.job  # type: ignore[assignment]
        if run.origin == ImportRun.Origin.GIT:
            _execute_git(context, run, progress)
        else:
            _execute_file(context, run, progress)

    try:
        return job_run(ImportRun, run_id, work)
    finally:
        _forget_upload(run_id)


def _forget_upload(run_id: int) -> None:
    """An uploaded copy holds raw data: it goes once the run has ended (not while queued or running)."""
    run = ImportRun.objects.filter(pk=run_id).values("path", "status").first()
    if run and run["status"] not in (ImportRun.Status.QUEUED, ImportRun.Status.RUNNING):
        path = Path(run["path"])
        if path.parent == upload_dir():
            path.unlink(missing_ok=True)


def _reporter(context: JobContext, report: Report, progress: Progress | None) -> Callable[[float], None]:
    chunks = Counter[str]()

    def report_progress(percent: float) -> None:
        context.stage(counts=dict(report.counts), refused=list(report.refused))
        context.progress(percent)
        if progress:
            progress(percent)
        chunks["n"] += 1
        if chunks["n"] % 10 == 0 and context.cancel_requested():
            raise JobCancelled("cancel requested")

    return report_progress


def _finish(context: JobContext, report: Report) -> None:
    context.stage(counts=dict(report.counts), refused=list(report.refused))
    counts = ", ".join(f"{k}={v}" for k, v in sorted(report.counts.items()))
    context.log(("dry run: " if context.job.dry_run else "") + (counts or "nothing read"))


def _execute_file(context: JobContext, run: ImportRun, progress: Progress | None) -> None:
    importer = FileImport(client=run.client, task=run.task, fmt=run.format, source=run.source, dry_run=run.dry_run)
    report_progress = _reporter(context, importer.report, progress)
    importer.run(Path(run.path), lambda done, size: report_progress(100.0 * done / max(size, 1)))
    if importer.processes:
        context.log(f"imported by {len(importer.processes)} worker processes, {files.SPAN_LINES} lines at a time")
    _finish(context, importer.report)


def _execute_git(context: JobContext, run: ImportRun, progress: Progress | None) -> None:
    options = run.options
    repo = Path(run.path)
    branch, tip = git.resolve_branch(repo, options.get("branch", ""))
    repository = git.repository_id(repo, tip)
    cursor = GitImportCursor.objects.filter(repository=repository, branch=branch, task=run.task).first()
    after = cursor.last_commit if cursor and git.is_ancestor(repo, cursor.last_commit, tip) else ""
    shas = list(git.new_commits(repo, tip, after=after, since=options.get("since", "")))
    truncated = bool(options.get("max_commits")) and len(shas) > options["max_commits"]
    shas = shas[: options["max_commits"]] if truncated else shas
    context.log(f"{len(shas)} new commits on {branch}" + (f" after {after[:10]}" if after else ""))
    limits = git.Limits(**{k: options[k] for k in ("max_diff_bytes", "min_diff_lines") if k in options})
    importer = FileImport(client=run.client, task=run.task, fmt="auto", source=run.source, dry_run=run.dry_run)
    report_progress = _reporter(context, importer.report, progress)
    merges = git.git(repo, "rev-list", "--merges", "--count", f"{after}..{tip}" if after else tip).strip()
    importer.report.counts["skipped:merge"] = int(merges or 0)
    for start in range(0, len(shas), CHUNK):
        walk = git.Walk()
        for sha in shas[start : start + CHUNK]:
            importer.report.counts["read"] += 1
            git.examine(repo, sha, limits, walk)
        for why, count in walk.skipped.items():
            importer.report.counts[f"skipped:{why}"] += count
        _store_commits(importer, run, walk)
        report_progress(100.0 * (start + CHUNK) / max(len(shas), 1))
    if not run.dry_run and shas:
        last = shas[-1] if truncated else tip  # the rest waits for the next run
        GitImportCursor.objects.update_or_create(repository=repository, branch=branch, task=run.task, defaults={"last_commit": last})
    _finish(context, importer.report)


def _store_commits(importer: FileImport, run: ImportRun, walk: git.Walk) -> None:
    chunk = []
    for number, commit in enumerate(walk.commits, start=1):
        prompt = [{"role": "user", "content": git.PROMPT + commit.diff}]
        parsed = formats.Parsed("sft", prompt, commit.message)
        chunk.append((number, item_for(parsed, task=run.task, source=run.source, metadata={"git_commit": commit.sha})))
    if chunk:
        importer.flush(chunk)
