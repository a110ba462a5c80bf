"""Settings for the test suite: the real settings, read from the environment, plus test speed-ups.

DATABASE_URL picks the database (CI and `make test` under .ci/run use PostgreSQL).
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("SUBJECT_HASH_KEY", "test-only-subject-hash-key")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("Q_SYNC", "true")
os.environ.setdefault("API_KEY_CACHE_SECONDS", "0")

from learning_platform.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
