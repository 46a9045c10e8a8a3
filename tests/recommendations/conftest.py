import pytest
from django.core.cache import cache

from . import backends


@pytest.fixture(autouse=True)
def _serving_doubles(settings):
    """Every test here serves from the deterministic doubles, on an empty cache."""
    settings.RECOMMENDATION_BACKENDS = backends.BACKENDS
    backends.reset()
    cache.clear()
    yield
    cache.clear()
