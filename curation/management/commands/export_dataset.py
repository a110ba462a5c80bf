from __future__ import annotations

import getpass
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation import exporters, selectors
from curation.services import CurationError
from curation.services.exports import dataset_export_record
from learning_platform.progress import progress_bar


class Command(BaseCommand):
    help = (
        "Write a frozen dataset's split as JSON Lines in a format other tools read. A file (--out PATH) is tracked "
        "(curation.DatasetExport): erasing a subject whose rows the dataset held deletes it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="The dataset id")
        parser.add_argument("--format", default="", choices=["", *exporters.FORMATS], help="Default: messages, dpo or kto by kind")
        parser.add_argument("--split", default="train", choices=list(selectors.SPLITS))
        parser.add_argument("--out", required=True, help="The file to write ('-' for standard output)")

    def handle(self, *args: Any, dataset: str, format: str, split: str, out: str, **options: Any) -> None:
        try:
            found = selectors.dataset_get(dataset_id=dataset)
            fmt, lines = selectors.dataset_export(dataset=found, fmt=format, split=split)
        except CurationError as exc:
            raise CommandError(exc.one_line()) from None
        total = found.stats.get("count", 0) if split == "all" else found.stats.get("splits", {}).get(split, 0)
        if out == "-":
            self._write_stdout(lines)
            return
        path = Path(out)
        # tracked before the first byte: an erasure of a subject in the dataset deletes the file
        dataset_export_record(dataset=found, path=path, fmt=fmt, split=split, rows=total, created_by=_who())
        with path.open("wb") as handle:
            for line in progress_bar(self, iterable=lines, total=total, unit="rows", disable=options["verbosity"] == 0):
                handle.write(line)
        self.stderr.write(f"wrote {total} {fmt} rows of {found} ({split}) to {path}")

    def _write_stdout(self, lines: Iterable[bytes]) -> None:
        """Write to standard output; a reader that stops early (`| head`) ends the export quietly
        with status 141, as a Unix tool killed by SIGPIPE does."""
        try:
            for line in lines:
                self.stdout.write(line.decode(), ending="")
            self.stdout.flush()
        except BrokenPipeError:
            # the unflushed rest would fail again when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stdout.fileno())
            raise SystemExit(128 + signal.SIGPIPE) from None


def _who() -> str:
    """Who exported: the operating-system user running the command."""
    try:
        return f"command:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name in the environment or the password database
        return "command"
