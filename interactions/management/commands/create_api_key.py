from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from interactions.services import InteractionError, api_client_create


class Command(BaseCommand):
    help = "Create an API client and print its key (shown once; only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="A unique name for the client application")
        parser.add_argument("--scopes", default="ingest,read", help="Comma-separated: ingest, read, admin (default ingest,read)")

    def handle(self, *args: Any, name: str, scopes: str, **options: Any) -> None:
        try:
            client, key = api_client_create(name=name, scopes=[s.strip() for s in scopes.split(",") if s.strip()])
        except InteractionError as exc:
            raise CommandError(exc.one_line()) from None
        self.stderr.write(f"Created API client {client.name!r} with scopes {','.join(client.scopes)}. The key (shown once):")
        self.stdout.write(key)
