"""Who is calling: organizations by API key (`Authorization: Api-Key <key>`), attendees by a signed,
expiring widget token (`Authorization: Attendee-Token <token>`) or a signed login link."""

from django.core import signing
from django.core.cache import cache
from django.db import transaction
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


# A valid key (with its organization) is cached under its hash, so that a platform's requests do
# not each pay a PostgreSQL query before any work: on the warm recommendations path that query was
# a quarter of the request. Revoking or deleting a key drops the entry at once, in every process
# (`api_key_cache_forget`, connected in `events.apps`), so the TTL only bounds how long a renamed
# organization shows its old name here. Only valid keys are cached: a wrong secret always asks the
# database, and cannot fill the cache with misses.
API_KEY_CACHE_KEY = "auth:api-key:{hashed}"
API_KEY_CACHE_SECONDS = 60
# Touch at most once a minute: a write per request would serialise busy ingestion on one row.
TOUCH_EVERY_SECONDS = 60


def api_key_cache_forget(*, hashed_key: str) -> None:
    """Drop a key's cached entry now and again after commit: a request that read the row before a
    revocation committed cannot then leave the old entry in place for long."""
    cache_key = API_KEY_CACHE_KEY.format(hashed=hashed_key)
    cache.delete(cache_key)
    transaction.on_commit(lambda: cache.delete(cache_key))


def api_key_changed(sender, instance: ApiKey, **kwargs) -> None:
    """Receiver (post_save, post_delete): any save of a key (a revocation, by the service or in the
    admin) or its deletion (with its organization, too) drops the cached entry."""
    api_key_cache_forget(hashed_key=instance.hashed_key)


def api_key_secret(header: str) -> str | None:
    """The secret of an `Authorization: Api-Key <secret>` header, None for any other header."""
    if not header.startswith(f"{KEYWORD} "):
        return None
    return header[len(KEYWORD) + 1 :].strip()


def _touch_due(key: ApiKey, now) -> bool:
    return key.last_used_at is None or (now - key.last_used_at).total_seconds() > TOUCH_EVERY_SECONDS


def api_key_cached(secret: str) -> ApiKey | None:
    """The valid key of `secret` if it is cached and its use was recorded within the last minute;
    else None, and the caller authenticates in full (`ApiKeyAuthentication`), which records it."""
    key = cache.get(API_KEY_CACHE_KEY.format(hashed=hash_api_key(secret)))
    return None if key is None or _touch_due(key, timezone.now()) else key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        secret = api_key_secret(authentication.get_authorization_header(request).decode(errors="replace"))
        if secret is None:
            return None
        parts = secret.split("_")
        if len(parts) < 3:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        hashed = hash_api_key(secret)
        cache_key = API_KEY_CACHE_KEY.format(hashed=hashed)
        key = cache.get(cache_key)
        if key is None:
            key = ApiKey.objects.select_related("organization").filter(prefix=parts[1], revoked_at__isnull=True).first()
            if key is None or key.hashed_key != hashed:
                raise exceptions.AuthenticationFailed(INVALID_KEY)
            cache.set(cache_key, key, timeout=API_KEY_CACHE_SECONDS)
        now = timezone.now()
        if _touch_due(key, now):
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
            cache.set(cache_key, key, timeout=API_KEY_CACHE_SECONDS)
        return ApiKeyUser(key), key

    def authenticate_header(self, request):
        return KEYWORD


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "events.api.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Api-Key <key>"}


# --- Attendee tokens (the embeddable widget) -------------------------------------------------------
#
# An external platform asks for a token for one attendee (with its API key) and hands it to the
# widget it embeds; the widget sends it as `Authorization: Attendee-Token <token>` (REST) and as
# `?token=` (WebSocket). Signed with SECRET_KEY under a salt of its own, so that no other signed
# value of the project (sessions, login links) can be replayed as one; expiring, so that a token
# copied out of a page stops working soon. Nothing is stored: revoking means rotating SECRET_KEY,
# acceptable for a credential this short-lived.

ATTENDEE_TOKEN_SALT = "events.attendee-token.widget"
ATTENDEE_TOKEN_MAX_AGE = 30 * 60  # seconds; the host page asks for a new one when it reloads
ATTENDEE_TOKEN_KEYWORD = "Attendee-Token"
INVALID_ATTENDEE_TOKEN = "Invalid or expired attendee token."


def attendee_token_issue(*, attendee) -> str:
    """A signed, expiring token that lets its bearer act as `attendee`, in that event only."""
    return signing.TimestampSigner(salt=ATTENDEE_TOKEN_SALT).sign_object(
        {"e": attendee.event_id, "a": attendee.pk}, compress=False
    )


def attendee_token_read(token: str, *, max_age: int = ATTENDEE_TOKEN_MAX_AGE) -> tuple[int, int] | None:
    """(event_id, attendee_id) from a valid, unexpired token; None otherwise."""
    try:
        payload = signing.TimestampSigner(salt=ATTENDEE_TOKEN_SALT).unsign_object(token, max_age=max_age)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), int) or not isinstance(payload.get("a"), int):
        return None
    return payload["e"], payload["a"]


class AttendeeTokenUser:
    """The bearer of an attendee token: one attendee of one event, nothing else."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False
    pk = None

    def __init__(self, *, event_id: int, attendee_id: int):
        self.event_id = event_id
        self.attendee_id = attendee_id

    def __str__(self) -> str:
        return f"attendee-token:{self.attendee_id}"


class AttendeeTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Attendee-Token <token>`. Declared only on the attendee endpoints: a token is
    no key to the rest of the API."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode(errors="replace")
        if not header.startswith(f"{ATTENDEE_TOKEN_KEYWORD} "):
            return None
        read = attendee_token_read(header[len(ATTENDEE_TOKEN_KEYWORD) + 1 :].strip())
        if read is None:
            raise exceptions.AuthenticationFailed(INVALID_ATTENDEE_TOKEN)
        event_id, attendee_id = read
        return AttendeeTokenUser(event_id=event_id, attendee_id=attendee_id), None

    def authenticate_header(self, request):
        return ATTENDEE_TOKEN_KEYWORD


class AttendeeTokenScheme(OpenApiAuthenticationExtension):
    target_class = "events.api.auth.AttendeeTokenAuthentication"
    name = "AttendeeToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization", "description": "Attendee-Token <token>"}
