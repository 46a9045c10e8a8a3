from django.contrib import admin
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog, JSONCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from events import views as event_views

urlpatterns = [
    path("", event_views.home, name="home"),
    path("healthz", event_views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("events.api.urls")),
    path("api/v1/", include("recommendations.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("", include("portal.urls")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("jsi18n.json", JSONCatalog.as_view(), name="json-catalog"),  # the embedded widget's
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
