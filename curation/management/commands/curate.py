from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware

from curation.services import CurationError, curation_run_create, curation_run_execute
from learning_platform.progress import progress_bar


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    moment = parse_datetime(value) or (datetime.combine(d, datetime.min.time()) if (d := parse_date(value)) else None)
    if moment is None:
        raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD) or an ISO datetime")
    return moment if moment.tzinfo else make_aware(moment)


class Command(BaseCommand):
    help = "Run curation in the foreground: build scored, scrubbed, deduplicated examples from what changed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task", default="", help="Only this task (default: every task)")
        parser.add_argument("--since", help="Reconsider everything changed after this date (default: since the last run)")

    def handle(self, *args: Any, task: str, since: str | None, **options: Any) -> None:
        try:
            run = curation_run_create(task=task, since=_since(since), requested_by="command")
        except CurationError as exc:
            raise CommandError(exc.one_line()) from None
        with progress_bar(self, total=100, unit="%", desc=f"curation run {run.pk}", disable=options["verbosity"] == 0) as bar:

            def progress(percent: float) -> None:
                bar.update(percent - bar.n)

            try:
                run = curation_run_execute(run_id=run.pk, progress=progress)
            except Exception as exc:
                raise CommandError(f"curation run {run.pk} failed: {exc}") from exc
        counts = ", ".join(f"{k}={v}" for k, v in sorted(run.counts.items()))
        self.stdout.write(f"curation run {run.pk} {run.status} in {run.duration_seconds:.1f}s: {counts}")
