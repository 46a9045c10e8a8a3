from django.apps import AppConfig


class PersonalizeConfig(AppConfig):
    name = "recommendations.backends.personalize"
    label = "personalize"
    verbose_name = "Amazon Personalize"

    def ready(self) -> None:
        # Registration only: the check and the schedule hook live in their own modules.
        from django.core import checks
        from django.db.models.signals import post_save

        from events.models import Event
        from events.signals import interactions_processing
        from recommendations.backends.personalize import checks as personalize_checks
        from recommendations.backends.personalize.receivers import on_interactions_processing
        from recommendations.backends.personalize.schedules import on_event_saved

        checks.register(personalize_checks.check_configuration, "personalize")
        post_save.connect(on_event_saved, sender=Event, dispatch_uid="personalize_schedules_sync")
        interactions_processing.connect(on_interactions_processing, dispatch_uid="personalize_forward")
