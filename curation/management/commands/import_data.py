from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation.importers import import_client, import_run_create, import_run_execute
from curation.importers.formats import FORMATS
from curation.models import ImportRun
from curation.services import CurationError
from learning_platform.progress import progress_bar


def report(command: BaseCommand, run: ImportRun) -> None:
    """The run's counts, and each refused line with its reason."""
    for refused in run.refused:
        command.stdout.write(f"line {refused['line']}: refused: {refused['reason']}")
    counts = ", ".join(f"{k}={v}" for k, v in sorted(run.counts.items())) or "nothing read"
    what = "would store (dry run, nothing stored)" if run.dry_run else "stored"
    command.stdout.write(f"import run {run.pk} {run.status}: {what}: {counts}")


def run_in_foreground(command: BaseCommand, run: ImportRun, verbosity: int) -> ImportRun:
    with progress_bar(command, total=100, unit="%", desc=f"import run {run.pk}", disable=verbosity == 0) as bar:
        try:
            return import_run_execute(run_id=run.pk, progress=lambda percent: bar.update(percent - bar.n))
        except Exception as exc:
            raise CommandError(f"import run {run.pk} failed: {exc}") from exc


class Command(BaseCommand):
    help = (
        "Import a JSONL data set (messages, alpaca, sharegpt, prompt_completion, dpo, kto, openai) as interactions "
        "with the feedback each record implies; curation then scrubs, scores and deduplicates them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="A JSON Lines file")
        parser.add_argument("--task", required=True, help="The task the interactions belong to")
        parser.add_argument("--format", default="auto", choices=["auto", *FORMATS], help="Default: detected per record")
        parser.add_argument("--source", default="staff", choices=["staff", "user"], help="Who the implied feedback is from")
        parser.add_argument("--client", default="import", help="The API client to store under (created if missing)")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be stored and refused; store nothing")

    def handle(self, *args: Any, file: Path, task: str, **options: Any) -> None:
        try:
            run = import_run_create(
                client=import_client(name=options["client"]), task=task, path=str(file.resolve()), fmt=options["format"],
                source=options["source"], dry_run=options["dry_run"], requested_by="command",
            )  # fmt: skip
        except CurationError as exc:
            raise CommandError(exc.one_line()) from None
        report(self, run_in_foreground(self, run, options["verbosity"]))
