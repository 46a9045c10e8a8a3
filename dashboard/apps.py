from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Organizer dashboard"

    def ready(self):
        from . import receivers  # noqa: F401  (connects the signal receivers)
