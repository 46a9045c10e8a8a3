"""/api/docs/ in the system Chromium: Swagger UI and its files come from this server
(drf-spectacular-sidecar), not a CDN, and it renders the API's operations from /api/schema/.
Before, the page loaded Swagger UI from jsdelivr and stayed blank wherever that was unreachable
(this machine, firewalled venues, a strict CSP)."""

import pytest

from tests.live import asgi_server, chromium, server_env

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_api_docs_render_the_operations_from_this_server_alone():
    from playwright.sync_api import expect

    with asgi_server(server_env(CELERY_BROKER_URL="memory://")) as base, chromium() as browser:
        page = browser.new_page()
        elsewhere: list[str] = []

        def only_this_server(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        page.route("**/*", only_this_server)
        page.goto(f"{base}/api/docs/")
        operations = page.locator(".opblock-summary-path")
        expect(operations.first).to_be_visible(timeout=15_000)
        paths = operations.all_inner_texts()
        assert any("/interactions/" in p for p in paths), paths
        assert any("/recommendations/" in p for p in paths), paths
        assert elsewhere == []
