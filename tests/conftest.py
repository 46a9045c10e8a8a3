import pytest

from matchmaking_site.celery import app as celery_app


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline unless a test starts a real worker (those tests say so with `worker`)."""
    celery_app.conf.task_always_eager = True
    yield
