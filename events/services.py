"""Writes to the event world. Views, serializers, commands, tasks and the admin call these.

Each service is keyword-only, checks that every row it links belongs to the same event (the
database cannot express that across foreign keys), and raises `ValidationError` with one of the
message constants below, which tests reuse.
"""

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop

from . import webhooks
from .enums import ConnectionStatus
from .models import (
    ApiKey,
    Attendee,
    Block,
    Connection,
    Event,
    InterestTag,
    LoginLink,
    NotRelevant,
    Organization,
    Room,
)
from .questionnaire import questionnaire_hydrate
from .signals import declared_changed

CROSS_EVENT = "{what} belongs to event {other!r}, not to event {event!r}."
SELF_LINK = "An attendee cannot {verb} themselves."  # API only: the pages never offer it
NEGATIVE_VALUE = "An interaction's value cannot be negative."
CONNECTION_EXISTS = gettext_noop("These two attendees already have a connection ({status}).")
CONNECTION_NOT_PENDING = gettext_noop("This connection request was already answered ({status}).")
CONNECTION_NOT_RECIPIENT = gettext_noop("Only the recipient can answer a connection request.")
CONNECTION_NOT_REQUESTER = gettext_noop("Only the requester can withdraw a connection request.")
BLOCKED = gettext_noop("One of these attendees has blocked the other.")


def ensure_same_event(*, event: Event, **rows) -> None:
    """Raise if any of `rows` (name -> model instance with an `event_id`) belongs to another event."""
    for name, row in rows.items():
        if row is not None and row.event_id != event.pk:
            raise ValidationError(
                {
                    name: CROSS_EVENT.format(
                        what=f"{name.replace('_', ' ').capitalize()} {row}", other=row.event_id, event=event.pk
                    )
                }
            )


# --- Organizations and API keys -------------------------------------------------------------------


def api_key_create(*, organization: Organization, name: str) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored and never shown again.

    Keys are 256 bits of randomness, so a plain SHA-256 is enough: a slow password hash protects
    low-entropy secrets, and would cost every API request a few hundred milliseconds."""
    prefix = secrets.token_hex(4)
    secret = f"mm_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(organization=organization, name=name, prefix=prefix, hashed_key=hash_api_key(secret))
    return key, secret


def hash_api_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


# --- Attendees ------------------------------------------------------------------------------------


@transaction.atomic
def attendee_update_profile(
    *,
    attendee: Attendee,
    headline: str,
    company: str,
    interests: Iterable[InterestTag],
    offers: Iterable[InterestTag],
    seeks: Iterable[InterestTag],
) -> Attendee:
    """An attendee edits their own profile: the card others see (headline, company) and what they
    declare (interests, offers, seeks). The rules engine reads the declarations at once; the next
    training sees them as questionnaire rows (rewritten here, idempotent); lists are told after
    commit (`events.signals.declared_changed`)."""
    attendee.headline, attendee.company = headline, company
    attendee.save(update_fields=["headline", "company"])
    attendee_set_tags(attendee=attendee, interests=interests, offers=offers, seeks=seeks)
    questionnaire_hydrate(event=attendee.event, attendee_ids=[attendee.pk])
    event_id, attendee_id = attendee.event_id, attendee.pk
    transaction.on_commit(lambda: declared_changed.send(sender=Attendee, event_id=event_id, attendee_id=attendee_id))
    return attendee


def attendee_set_tags(
    *,
    attendee: Attendee,
    interests: Iterable[InterestTag] | None = None,
    offers: Iterable[InterestTag] | None = None,
    seeks: Iterable[InterestTag] | None = None,
    planned_rooms: Iterable[Room] | None = None,
) -> Attendee:
    """Replace an attendee's declared tags and planned rooms, refusing tags of other events."""
    event = attendee.event
    for field, rows in (
        ("interests", interests),
        ("offers", offers),
        ("seeks", seeks),
        ("planned_rooms", planned_rooms),
    ):
        if rows is None:
            continue
        chosen = list(rows)
        for row in chosen:
            ensure_same_event(event=event, **{field: row})
        getattr(attendee, field).set(chosen)
    return attendee


# --- Interactions ---------------------------------------------------------------------------------


def interaction_qualifies(*, event: Event, type: str, value: float | None) -> bool:
    """An interaction qualifies for training when its dwell passes the event's threshold for its
    type. Types without a threshold (a chat message, a question) qualify as they are."""
    return dwell_passes(threshold=event.dwell_threshold(type), value=value)


def dwell_passes(*, threshold: float, value: float | None) -> bool:
    """The rule of `interaction_qualifies` for a threshold already looked up (ingestion looks each
    type's up once per batch)."""
    return threshold <= 0 or (value is not None and value >= threshold)


# --- Connections, blocks, not-relevant ------------------------------------------------------------


def _ensure_pair(*, event: Event, attendee: Attendee, other: Attendee, verb: str) -> None:
    ensure_same_event(event=event, attendee=attendee, other=other)
    if attendee.pk == other.pk:
        raise ValidationError(SELF_LINK.format(verb=verb))


def is_blocked_between(*, a: Attendee, b: Attendee) -> bool:
    return Block.objects.filter(Q(blocker=a, blocked=b) | Q(blocker=b, blocked=a)).exists()


@transaction.atomic
def connection_request(*, requester: Attendee, recipient: Attendee, message: str = "") -> Connection:
    event = requester.event
    _ensure_pair(event=event, attendee=requester, other=recipient, verb="connect with")
    if is_blocked_between(a=requester, b=recipient):
        raise ValidationError(BLOCKED)
    try:
        with transaction.atomic():
            return Connection.objects.create(event=event, requester=requester, recipient=recipient, message=message)
    except IntegrityError as exc:
        existing = Connection.objects.filter(
            Q(requester=requester, recipient=recipient) | Q(requester=recipient, recipient=requester)
        ).first()
        if existing is None:
            raise
        raise ValidationError(CONNECTION_EXISTS.format(status=existing.status)) from exc


@transaction.atomic
def connection_withdraw(*, connection: Connection, requester: Attendee) -> None:
    """The requester takes back a request not answered yet: the row goes, so that either of the two
    may ask again later. Under the row lock, like an answer: a request answered meanwhile stays."""
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    if requester.pk != connection.requester_id:
        raise ValidationError(CONNECTION_NOT_REQUESTER)
    if connection.status != ConnectionStatus.REQUESTED:
        raise ValidationError(CONNECTION_NOT_PENDING.format(status=connection.status))
    connection.delete()


@transaction.atomic
def connection_respond(*, connection: Connection, responder: Attendee, accept: bool) -> Connection:
    """Accept or decline a pending request. The row lock makes two concurrent answers safe:
    the second one sees the first one's status and is refused."""
    connection = Connection.objects.select_for_update().get(pk=connection.pk)
    if responder.pk != connection.recipient_id:
        raise ValidationError(CONNECTION_NOT_RECIPIENT)
    if connection.status != ConnectionStatus.REQUESTED:
        raise ValidationError(CONNECTION_NOT_PENDING.format(status=connection.status))
    connection.status = ConnectionStatus.ACCEPTED if accept else ConnectionStatus.DECLINED
    connection.responded_at = timezone.now()
    connection.save(update_fields=["status", "responded_at"])
    if accept:
        webhooks.connection_accepted(connection=connection)
    return connection


@transaction.atomic
def block_create(*, blocker: Attendee, blocked: Attendee) -> Block:
    event = blocker.event
    _ensure_pair(event=event, attendee=blocker, other=blocked, verb="block")
    # The pair's connection rows, locked as a message locks them: a message is written before the
    # block or refused after it (events.messages), never delivered across it.
    list(
        Connection.objects.select_for_update().filter(
            Q(requester=blocker, recipient=blocked) | Q(requester=blocked, recipient=blocker)
        )
    )
    block, _ = Block.objects.get_or_create(event=event, blocker=blocker, blocked=blocked)
    return block


def not_relevant_create(*, attendee: Attendee, target: Attendee) -> NotRelevant:
    event = attendee.event
    _ensure_pair(event=event, attendee=attendee, other=target, verb="mark")
    mark, _ = NotRelevant.objects.get_or_create(event=event, attendee=attendee, target=target)
    return mark


def block_delete(*, blocker: Attendee, blocked: Attendee) -> bool:
    """Lift `blocker`'s block of `blocked` (the widget's undo, or later); False when there was none.
    One row per delete, so the model signals (cache, live push) see it like any other change."""
    block = Block.objects.filter(event_id=blocker.event_id, blocker=blocker, blocked=blocked).first()
    if block is None:
        return False
    block.delete()
    return True


def not_relevant_delete(*, attendee: Attendee, target: Attendee) -> bool:
    """Take back a "not relevant" mark; False when there was none."""
    mark = NotRelevant.objects.filter(event_id=attendee.event_id, attendee=attendee, target=target).first()
    if mark is None:
        return False
    mark.delete()
    return True


# --- Consents -------------------------------------------------------------------------------------


def attendee_set_consents(
    *,
    attendee: Attendee,
    consent_be_recommended: bool | None = None,
    consent_receive_recommendations: bool | None = None,
    consent_training: bool | None = None,
) -> Attendee:
    """Change any of the three consents (None leaves one as it is). Saved with `save()`, not a
    queryset update, so that listeners of the attendee's `post_save` (suggestion caches) see it."""
    changes = {
        name: value
        for name, value in (
            ("consent_be_recommended", consent_be_recommended),
            ("consent_receive_recommendations", consent_receive_recommendations),
            ("consent_training", consent_training),
        )
        if value is not None and getattr(attendee, name) != value
    }
    if changes:
        for name, value in changes.items():
            setattr(attendee, name, value)
        attendee.save(update_fields=[*changes, "updated_at"])
    return attendee


# --- Attendee sign-in -----------------------------------------------------------------------------

# Sign-in links are single use and short-lived: a link forwarded, logged by a proxy or left in a
# mailbox is worth nothing once used or after this long. The page the link opens shows the expiry
# and signs in only on its button (a POST), so that a mail scanner that fetches links does not
# spend them.
LOGIN_LINK_MINUTES_MAX = 7 * 24 * 60


def login_link_issue(*, attendee: Attendee, minutes: int) -> tuple[LoginLink, str]:
    """A new link's row and its token, which is never stored (only its hash) nor shown again."""
    if not 1 <= minutes <= LOGIN_LINK_MINUTES_MAX:
        raise ValueError(f"minutes must be between 1 and {LOGIN_LINK_MINUTES_MAX}")
    token = secrets.token_urlsafe(32)
    link = LoginLink.objects.create(
        attendee=attendee,
        token_hash=hash_api_key(token),
        expires_at=timezone.now() + timedelta(minutes=minutes),
    )
    return link, token


def login_link_find(*, event_slug: str, token: str) -> LoginLink | None:
    """The unused, unexpired link of `token` for an attendee of that event; None otherwise."""
    return (
        LoginLink.objects.select_related("attendee", "attendee__event")
        .filter(
            token_hash=hash_api_key(token),
            attendee__event__slug=event_slug,
            used_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        .first()
    )


def login_link_redeem(*, event_slug: str, token: str) -> Attendee | None:
    """Spend the link: exactly one of two concurrent redemptions gets the attendee (the update
    matches an unused row once), the other gets None, as does an expired, used or unknown link."""
    link = login_link_find(event_slug=event_slug, token=token)
    if link is None:
        return None
    spent = LoginLink.objects.filter(pk=link.pk, used_at__isnull=True, expires_at__gt=timezone.now()).update(
        used_at=timezone.now()
    )
    return link.attendee if spent == 1 else None


@transaction.atomic
def attendee_user_ensure(*, attendee: Attendee):
    """The user account an attendee signs in with, created (without a usable password) on first
    use of a login link: attendees of a platform have no password here."""
    attendee = Attendee.objects.select_for_update().get(pk=attendee.pk)
    if attendee.user is not None:
        return attendee.user
    user_model = get_user_model()
    username = f"attendee-{attendee.pk}"
    user, created = user_model.objects.get_or_create(
        username=username, defaults={"first_name": attendee.display_name[:150]}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    attendee.user = user
    attendee.save(update_fields=["user", "updated_at"])
    return user
