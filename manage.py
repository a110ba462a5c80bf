#!/usr/bin/env python
"""Django's command-line utility for learning_platform."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "learning_platform.settings")
    local_env = Path(__file__).resolve().parent / "var" / "run.env"
    if local_env.is_file():  # written by `make run`: the local platform's settings
        os.environ.setdefault("ENV_FILE", str(local_env))
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018  (load settings now, to report a bad one in one line)
    except ImproperlyConfigured as exc:
        sys.exit(f"configuration error: {exc}")

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
