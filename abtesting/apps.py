from __future__ import annotations

from django.apps import AppConfig


class AbtestingConfig(AppConfig):
    name = "abtesting"
    verbose_name = "Evaluation and experiments"
