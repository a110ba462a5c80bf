from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django_q.models import Schedule

from learning_platform.schedules import RETIRED, SCHEDULES


class Command(BaseCommand):
    help = "Create or update the platform's django-q2 schedules (idempotent; safe to re-run)."

    def handle(self, *args: Any, **options: Any) -> None:
        for spec in SCHEDULES:
            _, created = Schedule.objects.update_or_create(
                name=spec.name,
                defaults={"func": spec.func, "schedule_type": spec.schedule_type, "minutes": spec.minutes, "repeats": -1},
            )
            self.stdout.write(f"{'created' if created else 'updated'} schedule {spec.name}: {spec.description}")
        for name in RETIRED:
            if Schedule.objects.filter(name=name).delete()[0]:
                self.stdout.write(f"deleted retired schedule {name}")
