from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from abtesting import reports
from registry.models import ActiveModel


class Command(BaseCommand):
    help = "Build the evaluation report of tasks now (what the monthly schedule does): every suite on the champion and earlier ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tasks", nargs="*", help="Tasks (default: every task with a champion)")

    def handle(self, *args: Any, tasks: list[str], **options: Any) -> None:
        for task in tasks or list(ActiveModel.objects.order_by("task").values_list("task", flat=True)):
            report = reports.report_build(task=task)
            for row in report.trend:
                self.stdout.write(f"  {row['suite']}: " + " -> ".join(f"{s['version']} {s['score']}" for s in row["scores"]))
            for r in report.regressions:
                self.stdout.write(
                    f"  regression in {r['suite']}/{r['category']}: {r['score']} vs {r['previous_score']} ({r['previous_version']})"
                )
            self.stdout.write(f"{task}: {report.summary} (report {report.pk})")
