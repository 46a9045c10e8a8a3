from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"

    def ready(self):
        # The signal receivers connect on import; the Celery tasks live in `jobs/`, where the
        # worker's autodiscovery (each app's `tasks` module) would not look.
        from recommendations.api import cors  # noqa: F401  (django-cors-headers asks it per request)
        from recommendations.jobs import tasks  # noqa: F401
        from recommendations.live import receivers  # noqa: F401
