"""Existing data into the loop: JSONL data sets and git history become interactions with the
feedback they imply, then go through curation like live traffic (see runs.py)."""

from __future__ import annotations

from .runs import import_client, import_run_create, import_run_execute, import_run_start, import_upload_save

__all__ = [
    "import_client",
    "import_run_create",
    "import_run_execute",
    "import_run_start",
    "import_upload_save",
]
