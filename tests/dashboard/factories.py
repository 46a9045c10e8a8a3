"""People and rows for dashboard tests."""

from django.contrib.auth import get_user_model

from events.management.commands.create_organizer import organizers_group
from tests.factories import OrganizationFactory, UserFactory

PASSWORD = "pw-for-tests-only"


def organizer(organization=None, **kwargs):
    """A staff user in the Organizers group (as `manage.py create_organizer` makes them)."""
    user = UserFactory(is_staff=True, **kwargs)
    user.groups.add(organizers_group())
    (organization or OrganizationFactory()).organizers.add(user)
    return get_user_model().objects.get(pk=user.pk)  # fresh: no cached permissions
