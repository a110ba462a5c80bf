from __future__ import annotations

from datetime import UTC
from typing import Any

from django.core.management.base import BaseCommand
from django.utils import timezone
from django_q.models import Schedule

from learning_platform.schedules import RETIRED, SCHEDULES, first_run


class Command(BaseCommand):
    help = (
        "Create or update the platform's django-q2 schedules (idempotent; safe to re-run). A new schedule first "
        "fires at the next boundary of its period (daily at its hour UTC, weekly on Monday, monthly on the 1st), "
        "never at once; a schedule already planned (or that has run) keeps its next run."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        now = timezone.now()
        for spec in SCHEDULES:
            row = Schedule.objects.filter(name=spec.name).first()
            kept = (
                row is not None
                and (row.schedule_type, row.minutes) == (spec.schedule_type, spec.minutes)
                and row.next_run is not None
                and (row.next_run > now or row.task is not None)  # planned, or it has run: django-q2 keeps the cadence
            )
            defaults = {"func": spec.func, "schedule_type": spec.schedule_type, "minutes": spec.minutes, "repeats": -1}
            if not kept:
                defaults["next_run"] = first_run(spec, now)
            row, created = Schedule.objects.update_or_create(name=spec.name, defaults=defaults)
            when = f"{row.next_run.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
            self.stdout.write(f"{'created' if created else 'updated'} schedule {spec.name} (next run {when}): {spec.description}")
        for name in RETIRED:
            if Schedule.objects.filter(name=name).delete()[0]:
                self.stdout.write(f"deleted retired schedule {name}")
