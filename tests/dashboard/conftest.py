import pytest
from django.db import connections


@pytest.fixture
def short_lived_connections():
    """Database connections opened by worker threads (`database_sync_to_async`) close at the end
    of each call instead of lingering, so the test database can be dropped at the end."""
    settings = connections.settings["default"]
    before = settings.get("CONN_MAX_AGE", 0)
    settings["CONN_MAX_AGE"] = 0
    yield
    settings["CONN_MAX_AGE"] = before


@pytest.fixture(autouse=True)
def _empty_cache():
    """Push sequence numbers and cached snapshots live in the cache, keyed by event id."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()
