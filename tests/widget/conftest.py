import pytest
from asgiref.sync import sync_to_async
from django.core.cache import caches
from django.db import connections


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Push state (open widgets, last lists) and presence live in the caches; ids restart with
    each test database, so leftovers would be read as this test's."""
    for alias in caches:
        caches[alias].clear()
    yield
    for alias in caches:
        caches[alias].clear()


@pytest.fixture
async def close_thread_connections():
    """The consumer's ORM calls run in asgiref's worker thread, whose persistent connection would
    outlive the test and block dropping the test database."""
    yield
    await sync_to_async(connections.close_all)()
