import pytest
from django.core.cache import cache

from recommendations.local import forget_loaded_models
from recommendations.rules import forget_rules_indexes


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
