from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from learning_platform.schedules import SCHEDULES, ScheduleError, schedule_names, schedule_run


class Command(BaseCommand):
    help = (
        "Run a schedule's work now, in this process, and print its result (the schedule's next run is unchanged). "
        "Work it queues, such as the training jobs of weekly-training, goes to the task queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", nargs="?", help="A schedule's name, e.g. weekly-training (see --list)")
        parser.add_argument("--list", action="store_true", help="List the schedules and what each does")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            described = {spec.name: spec.description for spec in SCHEDULES}
            for name in schedule_names():
                self.stdout.write(f"{name}: {described.get(name, '(not declared in code)')}")
            return
        if not options["name"]:
            raise CommandError(f"Name a schedule: {', '.join(schedule_names())}.")
        try:
            self.stdout.write(schedule_run(name=options["name"], actor="command"))
        except ScheduleError as exc:
            raise CommandError(exc.one_line()) from None
