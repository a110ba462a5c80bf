from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from training import services


class Command(BaseCommand):
    help = (
        "Show a task's training policy and readiness, or change it with --set FIELD=VALUE (saving it; until a "
        "policy is saved the default applies). Validated like the API and the admin."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task", help="The task")
        parser.add_argument(
            "--set", action="append", default=[], metavar="FIELD=VALUE", dest="changes",
            help=f"Change a field (repeatable): {', '.join(services.POLICY_FIELDS)}",
        )  # fmt: skip
        parser.add_argument("--reset", action="store_true", help="Reset every field not --set to its default")
        parser.add_argument("--json", action="store_true", help="Print the policy and readiness as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        changes = dict(self._pair(item) for item in options["changes"])
        try:
            if changes or options["reset"]:
                services.policy_update(task=options["task"], changes=changes, replace=options["reset"])
            state = services.readiness(task=options["task"])
        except services.TrainingError as exc:
            raise CommandError(exc.one_line()) from None
        if options["json"]:
            self.stdout.write(json.dumps({**state["policy"], "ready": state["ready"], "short": state["short"]}, indent=2))
            return
        policy = state["policy"]
        self.stdout.write(f"{policy['task']}: {'saved policy' if policy['saved'] else 'default policy (none saved)'}")
        for name in services.POLICY_FIELDS:
            self.stdout.write(f"  {name} = {policy[name]!r}")
        self.stdout.write("ready" if state["ready"] else f"not ready: {'; '.join(state['short'])}")

    @staticmethod
    def _pair(item: str) -> tuple[str, str]:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CommandError(f"--set takes FIELD=VALUE, got {item!r}.")
        return name.strip(), value.strip()
