from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from registry import services
from registry.models import ModelVersion


class Command(BaseCommand):
    help = "Make a model version its task's champion (it must be approved and untainted)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("version", help="The version name, e.g. tiny-llama-support-v3")
        parser.add_argument("--reason", default="", help="Why (kept in the lifecycle event)")
        parser.add_argument("--approve", action="store_true", help="Approve a candidate first")
        parser.add_argument("--actor", default="command")

    def handle(self, *args: Any, version: str, reason: str, approve: bool, actor: str, **options: Any) -> None:
        found = ModelVersion.objects.filter(name=version).first()
        if found is None:
            raise CommandError(f"No model version named {version!r}.")
        try:
            if approve and found.status == ModelVersion.Status.CANDIDATE:
                services.version_approve(version=found, actor=actor, reason=reason)
            promoted = services.version_promote(version=found, actor=actor, reason=reason)
        except services.RegistryError as exc:
            raise CommandError(exc.one_line()) from None
        self.stdout.write(f"{promoted.name} is now the champion of {promoted.task}")
