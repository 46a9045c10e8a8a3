import pytest

from matchmaking_site.celery import app as celery_app


@pytest.fixture(autouse=True)
def _celery_eager():
    """Tasks run inline unless a test starts a real worker (those tests say so with `worker`)."""
    celery_app.conf.task_always_eager = True
    yield


@pytest.fixture(autouse=True)
def _live_push_inline(settings):
    """Live pushes run in the test's own thread: no pool thread outlives a test or holds a
    connection to the test database."""
    settings.LIVE_PUSH_THREADS = 0


@pytest.fixture
def settled_db(transactional_db):
    """`transactional_db` for tests whose out-of-process server writes too: at teardown, wait until
    the server's sessions are quiet before the flush (see `tests.live.wait_database_quiet`)."""
    from tests.live import wait_database_quiet

    yield
    wait_database_quiet()
