from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation.services import CurationError, dataset_freeze_new


class Command(BaseCommand):
    help = "Freeze a new dataset version of a task's examples (immutable, split, hashed) and print its id."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--task", required=True)
        parser.add_argument("--kind", default="sft", choices=["sft", "preference", "binary"])
        parser.add_argument("--name", default="default")
        parser.add_argument("--min-tier", default="silver", choices=["gold", "silver", "bronze"])
        parser.add_argument("--category", action="append", dest="categories", help="Only these categories (repeatable)")
        parser.add_argument("--max-size", type=int)
        parser.add_argument("--balance", default="", choices=["", "label", "category", "label+category"])
        parser.add_argument("--eval-ratio", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        filters = {k: options[k] for k in ("task", "kind", "name", "min_tier", "categories", "max_size", "balance", "eval_ratio", "seed")}
        try:
            dataset = dataset_freeze_new(frozen_by="command", **filters)
        except CurationError as exc:
            raise CommandError(exc.one_line()) from None
        stats = dataset.stats
        self.stderr.write(f"froze {dataset}: {stats['count']} items {stats['splits']}, manifest {dataset.manifest_hash[:12]}")
        self.stdout.write(str(dataset.pk))
