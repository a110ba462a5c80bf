from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from interactions.models import ApiClient
from interactions.services import api_client_create


class Command(BaseCommand):
    help = (
        "First-run setup for a local platform: create a superuser and an API key if none exist, "
        "keep them in VAR_DIR/credentials.txt (readable by you only) and print how to log in. Safe to re-run."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--url", default="http://127.0.0.1:8000")

    def handle(self, *args: Any, username: str, url: str, **options: Any) -> None:
        path = settings.VAR_DIR / "credentials.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().splitlines() if path.exists() else []
        user_model = get_user_model()
        if not user_model.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, email="", password=password)
            lines = [line for line in lines if not line.startswith("admin ")] + [f"admin user={username} password={password}"]
        if not ApiClient.objects.exists():
            _, key = api_client_create(name="local", scopes=["admin", "ingest", "read"])
            lines = [line for line in lines if not line.startswith("api_key ")] + [f"api_key client=local key={key}"]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        self.stdout.write(f"\nlearning_platform is starting on {url}")
        self.stdout.write(f"  admin:    {url}/admin/   API docs: {url}/api/docs/")
        for line in lines:
            self.stdout.write(f"  {line}")
        if not lines:
            self.stdout.write("  (an existing superuser and API client were kept; create more with createsuperuser / create_api_key)")
        self.stdout.write(f"  these credentials are kept in {path}\n")
