import pytest
from django.core.cache import cache


@pytest.fixture
def empty_cache():
    """Rate-limit counters, stamps and cached lists from other tests must not leak in, nor out."""
    cache.clear()
    yield
    cache.clear()
