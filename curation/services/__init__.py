"""Writes of the curation app. The API, admin, commands and tasks call these."""

from __future__ import annotations

from .conflicts import conflict_resolve, conflicts_sync
from .datasets import dataset_create, dataset_derive, dataset_freeze, dataset_freeze_new
from .errors import CurationError
from .examples import example_review
from .runs import curation_run_create, curation_run_execute, curation_run_start

__all__ = [
    "CurationError",
    "conflict_resolve",
    "conflicts_sync",
    "curation_run_create",
    "curation_run_execute",
    "curation_run_start",
    "dataset_create",
    "dataset_derive",
    "dataset_freeze",
    "dataset_freeze_new",
    "example_review",
]
