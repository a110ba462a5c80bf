from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation.importers import import_client, import_run_create
from curation.importers.git import Limits
from curation.management.commands.import_data import report, run_in_foreground
from curation.models import ImportRun
from curation.services import CurationError


class Command(BaseCommand):
    help = (
        "Import a git repository's history (a commit's diff the prompt, its message the answer), leaving out merges, "
        "bots, binary and generated files, empty and huge diffs; a second run imports only new commits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="The repository (a working tree or a bare repository)")
        parser.add_argument("--task", required=True)
        parser.add_argument("--branch", default="", help="Default: the checked-out branch")
        parser.add_argument("--since", default="", help="Only commits after this date (git's --since syntax)")
        parser.add_argument("--max-commits", type=int, default=0, help="At most this many (oldest first); 0: all")
        parser.add_argument("--max-diff-bytes", type=int, default=Limits.max_diff_bytes, help="Larger diffs are skipped")
        parser.add_argument("--min-diff-lines", type=int, default=Limits.min_diff_lines, help="Smaller diffs are skipped")
        parser.add_argument("--client", default="import", help="The API client to store under (created if missing)")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, path: Path, task: str, **options: Any) -> None:
        if options["max_commits"] < 0 or options["max_diff_bytes"] < 1:
            raise CommandError("--max-commits must be >= 0 and --max-diff-bytes >= 1")
        keep = ("branch", "since", "max_commits", "max_diff_bytes", "min_diff_lines")
        try:
            run = import_run_create(
                client=import_client(name=options["client"]), task=task, path=str(path.resolve()), origin=ImportRun.Origin.GIT,
                dry_run=options["dry_run"], options={k: options[k] for k in keep}, requested_by="command",
            )  # fmt: skip
        except CurationError as exc:
            raise CommandError(exc.one_line()) from None
        report(self, run_in_foreground(self, run, options["verbosity"]))
