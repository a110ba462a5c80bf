from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "PATH": os.environ.get("PATH", ""),
    "DEBUG": "false",
    "SECRET_KEY": "a-production-like-secret-key-with-enough-entropy-0123456789-abcdefghijkl",
    "SUBJECT_HASH_KEY": "a-production-like-subject-hash-key",
    "ALLOWED_HOSTS": "platform.example.com",
    "DATABASE_URL": os.environ.get("DATABASE_URL", "sqlite:////tmp/lp-deploy-check.sqlite3"),
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.django_db
def test_migrations_are_in_step_with_the_models():
    call_command("makemigrations", "--check", "--dry-run", stdout=io.StringIO())


def test_check_deploy_is_clean_under_production_like_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("DEBUG", "maybe", "DEBUG='maybe' is not valid"),
        ("MAX_TEXT_BYTES", "lots", "MAX_TEXT_BYTES='lots' is not valid"),
        ("DATABASE_URL", "nosuchdb://x", "DATABASE_URL='nosuchdb://x' is not valid"),
        ("API_THROTTLE_INGEST", "fast", "API_THROTTLE_INGEST='fast' is not valid"),
        ("SECRET_KEY", "", "SECRET_KEY must be set when DEBUG is off"),
    ],
)
def test_a_malformed_setting_stops_start_up_with_one_clear_line(name, value, message):
    result = _manage("check", env={**PRODUCTION_ENV, name: value})
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"configuration error: {message}")


def test_every_setting_read_from_the_environment_is_documented_in_the_readme():
    settings_source = (ROOT / "learning_platform" / "settings.py").read_text()
    names = set(re.findall(r'_read\("([A-Z_]+)"', settings_source)) | set(re.findall(r'env\.str\("([A-Z_]+)"', settings_source))
    readme = (ROOT / "README.md").read_text()
    assert len(names) > 20
    assert sorted(name for name in names if f"`{name}`" not in readme) == []


def test_the_web_process_does_not_import_the_ml_stack():
    code = (
        "import django, sys; django.setup(); import learning_platform.urls, training.admin, training.services, training.runner; "
        "from django.urls import resolve; resolve('/api/v1/training/status'); "
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl', 'datasets') if m in sys.modules))"
    )
    env = {**PRODUCTION_ENV, "DJANGO_SETTINGS_MODULE": "learning_platform.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
