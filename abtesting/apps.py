from __future__ import annotations

from django.apps import AppConfig


class AbtestingConfig(AppConfig):
    name = "abtesting"
    verbose_name = "Evaluation and experiments"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (arena for new candidates, canary routing, trials, erasure)
