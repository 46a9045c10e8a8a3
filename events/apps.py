from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "events"
    verbose_name = "Events"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from .api.auth import api_key_changed
        from .models import ApiKey

        post_save.connect(api_key_changed, sender=ApiKey, dispatch_uid="events.api_key_changed")
        post_delete.connect(api_key_changed, sender=ApiKey, dispatch_uid="events.api_key_changed")
