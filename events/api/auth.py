"""API-key authentication for external platforms: `Authorization: Api-Key <key>`."""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from ..models import ApiKey
from ..services import hash_api_key

INVALID_KEY = "Invalid or revoked API key."
KEYWORD = "Api-Key"


class ApiKeyUser:
    """The caller behind an API key: an organization, not a person."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False

    def __init__(self, api_key: ApiKey):
        self.api_key = api_key
        self.organization = api_key.organization

    @property
    def pk(self) -> str:
        # Throttles key their counters by `user.pk`: one budget per API key.
        return f"api-key-{self.api_key.pk}"

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(f"{KEYWORD} "):
            return None
        secret = header[len(KEYWORD) + 1 :].strip()
        parts = secret.split("_")
        if len(parts) < 3:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        key = ApiKey.objects.select_related("organization").filter(prefix=parts[1], revoked_at__isnull=True).first()
        if key is None or key.hashed_key != hash_api_key(secret):
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        # Touch at most once a minute: a write per request would serialise busy ingestion on one row.
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ApiKeyUser(key), key

    def authenticate_header(self, request):
        return KEYWORD


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "events.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key <key>"}
