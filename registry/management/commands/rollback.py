from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry import services
from registry.models import ModelVersion


class Command(BaseCommand):
    help = "Roll a task back to its previous champion, or to a named earlier version."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task")
        parser.add_argument("--to", dest="to_version", help="A version name (default: the champion before the current one)")
        parser.add_argument("--reason", default="")
        parser.add_argument("--actor", default="command")

    def handle(self, *args: Any, task: str, to_version: str | None, reason: str, actor: str, **options: Any) -> None:
        target = None
        if to_version:
            target = ModelVersion.objects.filter(name=to_version).first()
            if target is None:
                raise CommandError(f"No model version named {to_version!r}.")
        try:
            active = services.version_rollback(task=task, actor=actor, reason=reason, to_version=target)
        except services.RegistryError as exc:
            raise CommandError(exc.one_line()) from None
        self.stdout.write(f"{task} rolled back to {active.name}")
