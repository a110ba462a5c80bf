"""Settings for the test suite: the real settings, read from the environment, plus test speed-ups.

DATABASE_URL picks the database (CI and `make test` under .ci/run use PostgreSQL).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SUBJECT_HASH_KEY", "test-only-subject-hash-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("Q_SYNC", "true")
os.environ.setdefault("API_KEY_CACHE_SECONDS", "0")
os.environ.setdefault("CURATION_WORKERS", "1")  # test data lives in the test's transaction
os.environ.setdefault("AUTO_EVALUATE", "false")  # the arena chain runs where a test turns it on
os.environ.setdefault("EXPERIMENT_CACHE_SECONDS", "0")
# An empty BASE_MODEL builds the random-initialised offline model here (seconds, not the pretrained
# build's minutes); tests that need the pretrained base build it themselves (tests/training/test_learning.py).
os.environ.setdefault("BASE_MODEL_PRETRAIN_STEPS", "0")
os.environ.setdefault("DASHBOARD_CACHE_SECONDS", "0")  # the tests' locmem cache lives across tests
# Throttling off for the suite (tests send bursts); tests/interactions/test_throttling.py turns
# each budget on. The login lockout stays on at its default (tests/test_door.py proves it).
os.environ.setdefault("API_THROTTLE_INGEST", "off")
os.environ.setdefault("API_THROTTLE_READ", "off")
os.environ.setdefault("API_THROTTLE_ADMIN", "off")
os.environ.setdefault("API_THROTTLE_GENERATION_TOKENS", "off")

from learning_platform.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # A file, not shared-cache memory, so concurrent tests wait on locks instead of failing.
    DATABASES["default"]["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"lp-test-{os.getpid()}.sqlite3")}  # noqa: F405
