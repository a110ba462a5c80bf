"""Settings for benchmarks/ingest.py: the real settings plus a bare baseline view."""

from __future__ import annotations

from learning_platform.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.bench_urls"
