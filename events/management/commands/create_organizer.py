from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from events.models import Organization

ORGANIZERS_GROUP = "Organizers"
# Apps whose models organizers manage in the admin; what they see is scoped to their organizations.
# Not django_celery_beat: its raw rows are for superusers (events.admin); organizers edit their
# events' schedules on the event's Schedules page.
ORGANIZER_APPS = ["events", "recommendations", "personalize"]
# Facts are not edited by hand.
READ_ONLY = {"add_interaction", "change_interaction", "delete_interaction", "add_apikey"}


def organizers_group() -> Group:
    group, _ = Group.objects.get_or_create(name=ORGANIZERS_GROUP)
    perms = Permission.objects.filter(content_type__app_label__in=ORGANIZER_APPS).exclude(codename__in=READ_ONLY)
    group.permissions.set(perms)
    return group


class Command(BaseCommand):
    help = "Create (or update) an organizer login: staff, in the Organizers group, member of an organization."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization slug (must exist).")
        parser.add_argument("--username", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")

    @transaction.atomic
    def handle(self, *args, organization, username, password, email, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"--organization: no organization with slug {organization!r}")
        user, created = get_user_model().objects.get_or_create(username=username, defaults={"email": email})
        user.is_staff = True
        user.set_password(password)
        user.save()
        user.groups.add(organizers_group())
        org.organizers.add(user)
        verb = "Created" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} organizer {username!r} of {org.name!r}."))
