"""Progress bars for management commands."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm


def progress_bar(command: BaseCommand, **options: Any) -> tqdm:
    """A tqdm bar on the command's error stream itself: Django's OutputWrapper ends every write
    with a newline, which would print each refresh of the bar on a line of its own."""
    return tqdm(file=command.stderr._out, **options)
