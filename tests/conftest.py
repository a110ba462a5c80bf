from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.factories import ApiClientFactory


@pytest.fixture
def make_api():
    """An API test client authenticated as a new API client with the given scopes."""

    def make(scopes: tuple[str, ...] = ("ingest", "read", "admin"), name: str | None = None) -> APIClient:
        client = ApiClientFactory(scopes=list(scopes), **({"name": name} if name else {}))
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {client.raw_key}")
        api.client_obj = client
        return api

    return make


@pytest.fixture
def api(make_api, db):
    return make_api()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The learning test first (a stable sort keeps the rest in order): under pytest-xdist its
    minutes of building and fine-tuning then overlap the rest of the suite in the other workers,
    instead of running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("learning") is None)
