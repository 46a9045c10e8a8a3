from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Recommendations"
    realtime_signal = ""

    def ready(self) -> None:
        from . import receivers

        # Which signal feeds the live model, for `manage.py shell` and the admin to show.
        RecommendationsConfig.realtime_signal = receivers.connect()
