from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from learning_platform.progress import progress_bar
from registry.export import FORMATS, version_export
from registry.models import ModelVersion
from registry.services import RegistryError


class Command(BaseCommand):
    help = (
        "Export a model version: adapter (PEFT adapter, lineage, card), merged (plain safetensors, no peft needed) "
        "or ollama (merged weights and a Modelfile). A tainted version is refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="The version's name (or its id)")
        parser.add_argument("--format", default="adapter", choices=FORMATS)
        parser.add_argument("--out", required=True, type=Path, help="An empty or new folder")

    def handle(self, *args: Any, version: str, **options: Any) -> None:
        found = ModelVersion.objects.filter(name=version).first()
        if found is None and version.isdigit():
            found = ModelVersion.objects.filter(pk=int(version)).first()
        if found is None:
            raise CommandError(f"No model version named {version!r}.")
        steps = 1 if options["format"] == "adapter" else 2
        with progress_bar(self, total=steps, desc=f"export {found.name}", disable=options["verbosity"] == 0) as bar:
            try:
                out = version_export(version=found, fmt=options["format"], out=options["out"].resolve())
            except RegistryError as exc:
                raise CommandError(exc.one_line()) from None
            bar.update(steps)
        self.stdout.write(f"exported {found.name} as {options['format']} to {out}")
