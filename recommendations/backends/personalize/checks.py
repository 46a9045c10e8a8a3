"""`manage.py check`: say so when an event uses Personalize and the configuration is missing.

A Warning, not an Error: the embedded default has no AWS settings and must still pass `check`;
and with no event on this backend there is nothing to warn about at all.
"""

from django.core.checks import Warning
from django.db import DatabaseError

from events.enums import Backend
from recommendations.backends.personalize.clients import configuration_problem

W001 = "personalize.W001"
HINT = "Set AWS_REGION, PERSONALIZE_ROLE_ARN and PERSONALIZE_BUCKET (see README, 'Amazon Personalize')."


def check_configuration(app_configs=None, **kwargs):
    problem = configuration_problem()
    if not problem:
        return []
    from events.models import Event

    try:
        slugs = list(Event.objects.filter(backend=Backend.PERSONALIZE).values_list("slug", flat=True)[:5])
    except DatabaseError:
        return []  # no database yet (before migrate): nothing can use the backend
    if not slugs:
        return []
    return [
        Warning(
            f"{problem} Events using it fall back to the local model: {', '.join(slugs)}.",
            hint=HINT,
            id=W001,
        )
    ]
