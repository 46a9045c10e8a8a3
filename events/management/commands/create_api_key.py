from django.core.management.base import BaseCommand, CommandError

from events.models import Organization
from events.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an organization and print it. The key is shown only this once."

    def add_arguments(self, parser):
        parser.add_argument("--organization", required=True, help="Organization slug.")
        parser.add_argument("--name", required=True, help="What the key is for, e.g. the platform's name.")

    def handle(self, *args, organization, name, **options):
        org = Organization.objects.filter(slug=organization).first()
        if org is None:
            raise CommandError(f"--organization: no organization with slug {organization!r}")
        key, secret = api_key_create(organization=org, name=name)
        self.stdout.write(secret)
        self.stderr.write(f"Key {key.prefix}… created for {org.name!r}; store it now, it is not shown again.")
