import pytest
from django.core.cache import cache

from recommendations.backends.local.loaded import forget_loaded_models
from recommendations.backends.rules import forget_rules_indexes

from . import backends


@pytest.fixture(autouse=True)
def _fresh_model_state(settings, tmp_path):
    """Each test starts with no loaded model, an empty cache and its own artifact folder: version
    ids restart with each test database, so leftovers would be read as this test's data."""
    settings.MODEL_ARTIFACT_ROOT = tmp_path / "models"
    cache.clear()
    forget_loaded_models()
    forget_rules_indexes()
    yield
    cache.clear()
    forget_loaded_models()
    forget_rules_indexes()


@pytest.fixture(autouse=True)
def _serving_doubles(request, settings):
    """Serving tests serve from deterministic backend doubles, so that what they check (filters,
    cache, phases) does not move with the model. Tests of the real rules and local backends opt
    out with the `real_backends` marker."""
    if request.node.get_closest_marker("real_backends"):
        yield
        return
    settings.RECOMMENDATION_BACKENDS = backends.BACKENDS
    backends.reset()
    yield
