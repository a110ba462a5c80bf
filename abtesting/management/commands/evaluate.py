from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from abtesting import services
from abtesting.models import EvalSuite
from registry.models import ModelVersion


class Command(BaseCommand):
    help = "Run an evaluation suite on a model version and print its score per category."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="A version name")
        parser.add_argument("--suite", default="default", help="The suite's name for the version's task (default: the default suite)")

    def handle(self, *args: Any, version: str, suite: str, **options: Any) -> None:
        found = ModelVersion.objects.filter(name=version).first()
        if found is None:
            raise CommandError(f"No model version named {version!r}.")
        chosen = (
            services.suite_default(task=found.task) if suite == "default" else EvalSuite.objects.filter(task=found.task, name=suite).first()
        )
        if chosen is None:
            raise CommandError(f"No suite named {suite!r} for task {found.task!r}.")
        try:
            run = services.eval_run(version=found, suite=chosen)
        except services.EvaluationError as exc:
            raise CommandError(exc.one_line()) from None
        for category, values in sorted(run.by_category.items()):
            self.stdout.write(f"  {category:15s} {values['score']:.3f}  {values['latency_ms']:.0f} ms")
        self.stdout.write(f"{found.name} on {chosen}: score {run.score:.3f}, mean latency {run.mean_latency_ms:.0f} ms (run {run.pk})")
