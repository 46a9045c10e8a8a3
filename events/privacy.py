"""An attendee's rights over their data, and the event's retention policy.

- `attendee_data_export`: everything we hold about one attendee, as JSON-ready data.
- `attendee_erase`: deletes the attendee and every row about them (interactions, visits,
  connections, blocks, marks, and through the cascade in `recommendations/` their batch rows and
  funnel events). `attendee_erasing` is sent first, inside the transaction, so that derived data
  outside this app (caches, a remote Personalize dataset) is cleared by whoever owns it.
- `events_purge_expired`: a set time after an event closes, personal data is deleted and only
  aggregates (`EventArchive`) are kept.
"""

from datetime import datetime, timedelta

import django.dispatch
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from .models import Attendee, Block, Connection, Event, EventArchive, Interaction, Meeting, Message, NotRelevant

# Sent inside the erasing transaction, before the rows go. Receivers get `attendee` (still in the
# database) and must not fail for ordinary reasons: an exception aborts the erasure.
attendee_erasing = django.dispatch.Signal()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def attendee_data_export(*, attendee: Attendee) -> dict:
    """All personal data about `attendee` that this app holds. Derived data (suggestion lists) is
    recomputed from these rows, so it adds nothing personal of its own."""
    interactions = (
        Interaction.objects.filter(attendee=attendee)
        .select_related("room", "content", "interest")
        .order_by("occurred_at", "id")
    )
    connections = Connection.objects.filter(Q(requester=attendee) | Q(recipient=attendee)).select_related(
        "requester", "recipient"
    )
    return {
        "event": attendee.event.slug,
        "profile": {
            "external_id": attendee.external_id,
            "display_name": attendee.display_name,
            "headline": attendee.headline,
            "company": attendee.company,
            "role": attendee.role,
            "group": attendee.group,
            "interests": sorted(t.label for t in attendee.interests.all()),
            "offers": sorted(t.label for t in attendee.offers.all()),
            "seeks": sorted(t.label for t in attendee.seeks.all()),
            "planned_rooms": sorted(r.external_id for r in attendee.planned_rooms.all()),
        },
        "consents": {
            "be_recommended": attendee.consent_be_recommended,
            "receive_recommendations": attendee.consent_receive_recommendations,
            "training": attendee.consent_training,
        },
        "email": {
            "address": attendee.email,
            "meetings": attendee.email_meetings,
            "digest": attendee.email_digest,
            "language": attendee.language,
        },
        "interactions": [
            {
                "client_event_id": i.client_event_id,
                "type": i.type,
                "context_kind": i.context_kind,
                "context": (i.room or i.content or i.interest).__str__(),
                "value": i.value,
                "occurred_at": _iso(i.occurred_at),
                "source": i.source,
                "qualifies": i.qualifies,
            }
            for i in interactions
        ],
        "connections": [
            {
                "with": (c.recipient if c.requester_id == attendee.pk else c.requester).external_id,
                "direction": "sent" if c.requester_id == attendee.pk else "received",
                "status": c.status,
                "created_at": _iso(c.created_at),
            }
            for c in connections
        ],
        "messages": [
            {
                "with": (
                    m.connection.recipient if m.connection.requester_id == attendee.pk else m.connection.requester
                ).external_id,
                "sent_by_me": m.sender_id == attendee.pk,
                "body": m.body,
                "sent_at": _iso(m.created_at),
            }
            for m in Message.objects.filter(Q(connection__requester=attendee) | Q(connection__recipient=attendee))
            .select_related("connection__requester", "connection__recipient")
            .order_by("created_at", "pk")
        ],
        "meetings": [
            {
                "with": (m.recipient if m.requester_id == attendee.pk else m.requester).external_id,
                "status": m.status,
                "starts_at": _iso(m.starts_at),
                "place": m.place.name if m.place else None,
                "message": m.message,
            }
            for m in Meeting.objects.filter(Q(requester=attendee) | Q(recipient=attendee))
            .select_related("requester", "recipient", "place")
            .order_by("created_at", "pk")
        ],
        "blocked": sorted(Block.objects.filter(blocker=attendee).values_list("blocked__external_id", flat=True)),
        "not_relevant": sorted(
            NotRelevant.objects.filter(attendee=attendee).values_list("target__external_id", flat=True)
        ),
    }


@transaction.atomic
def attendee_erase(*, attendee: Attendee) -> dict:
    """Delete the attendee and everything about them; return what was deleted, per model."""
    attendee = Attendee.objects.select_for_update().select_related("event").get(pk=attendee.pk)
    attendee_erasing.send(sender=Attendee, attendee=attendee)
    _total, per_model = attendee.delete()
    return per_model


def event_archive(*, event: Event) -> EventArchive:
    """Aggregates that survive the purge: counts, never people."""
    interactions = Interaction.objects.filter(event=event)
    totals = interactions.aggregate(
        n=Count("id"), qualifying=Count("id", filter=Q(qualifies=True)), dwell=Sum("value", filter=Q(type="join_room"))
    )
    rooms = {
        str(name): {"interactions": n, "dwell_seconds": float(dwell or 0)}
        for name, n, dwell in interactions.filter(room__isnull=False)
        .values_list("room__name")
        .annotate(n=Count("id"), dwell=Sum("value"))
        .values_list("room__name", "n", "dwell")
    }
    archive, _ = EventArchive.objects.update_or_create(
        event=event,
        defaults={
            "attendees": event.attendees.count(),
            "interactions": totals["n"],
            "qualifying_interactions": totals["qualifying"],
            "room_dwell_seconds": float(totals["dwell"] or 0),
            "connections_accepted": Connection.objects.filter(event=event, status="accepted").count(),
            "per_room": rooms,
        },
    )
    return archive


def event_purge_due_at(event: Event) -> datetime | None:
    closed_at = event.on_demand_ends_at or event.live_ends_at
    if closed_at is None:
        return None
    return closed_at + timedelta(days=event.retention_days)


def events_purge_expired(*, now: datetime | None = None) -> list[str]:
    """Purge personal data of every event past its retention date; return their slugs."""
    now = now or timezone.now()
    purged = []
    for event in Event.objects.filter(attendees__isnull=False).distinct():
        due = event_purge_due_at(event)
        if due is None or due > now:
            continue
        with transaction.atomic():
            event_archive(event=event)
            # One bulk delete: the event is closed, so nothing serves from these rows any more,
            # and its remote resources were torn down when it closed.
            Attendee.objects.filter(event=event).delete()
        purged.append(event.slug)
    return purged
