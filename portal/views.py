"""The attendee's pages: lobby, room, content, consents, connections, and the sign-in link.

Server-rendered; the "people to meet" widget is painted here first (from the one serving path) and
then kept live by `static/matchmaking/widget.js` over the suggestions WebSocket. Imports run
portal -> recommendations -> events."""

import functools
import zoneinfo
from collections import defaultdict
from functools import wraps
from urllib.parse import unquote, urlencode

from django.conf import settings
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop
from django.views import i18n
from django.views.decorators.csrf import csrf_exempt, ensure_csrf_cookie
from django.views.decorators.http import require_POST

from events import messages, notifications, services
from events.enums import ConnectionStatus
from events.models import Attendee, Block, Connection, Content, Event, InterestTag, Room
from events.presence import present_in_rooms
from matchmaking_site.sentences import localize, localize_items
from portal.forms import ProfileForm
from recommendations.live import push
from recommendations.serving.why import match_reasons

LOGIN_LINK_INVALID = gettext_noop(
    "This sign-in link is invalid, was used already or has expired. Ask the organizers for a new one."
)
NOT_AN_ATTENDEE = gettext_noop("You are not signed in as an attendee of this event.")
NO_SUCH_CONVERSATION = gettext_noop("No such conversation.")


# An attendee may read times in their own zone instead of the event's: the page's switch stores the
# browser's zone name here (a cookie: no account setting needed, and it follows the device).
TZ_COOKIE = "mm_tz"


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def page_zone(request: HttpRequest, event: Event) -> tuple[str, bool]:
    """(zone name, whether it is the event's): the attendee's own zone when they chose it and it is
    a real zone, the event's otherwise. One rule for every attendee page: times are shown in it,
    labelled."""
    own = unquote(request.COOKIES.get(TZ_COOKIE, ""))
    if own and own != event.timezone and own in _zones():
        return own, False
    return event.timezone, True


def attendee_page(view):
    """Resolve the signed-in user's attendee of the event in the URL, or answer 403 with a page
    that says how to sign in. The attendee is never taken from the request's parameters. The page
    renders in its time zone (`page_zone`)."""

    @wraps(view)
    def wrapper(request: HttpRequest, event: str, *args, **kwargs):
        attendee = None
        if request.user.is_authenticated:
            attendee = (
                Attendee.objects.select_related("event", "event__organization")
                .filter(event__slug=event, user=request.user)
                .first()
            )
        if attendee is None:
            context = {"message": _(NOT_AN_ATTENDEE), "event": Event.objects.filter(slug=event).first()}
            return render(request, "portal/not_signed_in.html", context, status=403)
        zone, _is_event = page_zone(request, attendee.event)
        with timezone.override(zoneinfo.ZoneInfo(zone)):  # the pages render eagerly, inside it
            return view(request, attendee, *args, **kwargs)

    return ensure_csrf_cookie(wrapper)


def about(request: HttpRequest, event: str) -> HttpResponse:
    """The event's public page: what it is, when (in its zone, labelled), how "people to meet"
    works, the attendee's choices, the programme, and how to sign in; a signed-in attendee of the
    event gets the way to the lobby. Nothing about who attends."""
    event_obj = get_object_or_404(Event.objects.select_related("organization"), slug=event)
    attendee = None
    if request.user.is_authenticated:
        attendee = Attendee.objects.filter(event=event_obj, user=request.user).first()
    rooms = Room.objects.filter(event=event_obj).order_by("starts_at", "name")
    context = {"event": event_obj, "attendee": attendee, "rooms": rooms, "phase_label": event_obj.get_phase_display()}
    return render(request, "portal/about.html", context)


def _widget(attendee: Attendee) -> dict:
    seq, items, empty_code = push.widget_first_paint(attendee=attendee)
    return {"items": localize_items(items), "seq": seq, "size": push.WIDGET_SIZE, "empty_code": empty_code}


def _page(request, attendee: Attendee, template: str, **context) -> HttpResponse:
    zone = timezone.get_current_timezone_name()  # `attendee_page` chose it (`page_zone`)
    return render(
        request,
        template,
        {
            "attendee": attendee,
            "event": attendee.event,
            "widget": _widget(attendee),
            "zone": zone,
            "is_event_zone": zone == attendee.event.timezone,
            "tz_cookie": TZ_COOKIE,
            **context,
        },
    )


@ensure_csrf_cookie
def login_link(request: HttpRequest, event: str, token: str) -> HttpResponse:
    """A sign-in link (printed by `manage.py attendee_login_link`, or sent by the organizers).
    Opening it shows who it signs in and until when it is valid; its button spends it (a POST:
    a mail scanner that fetches the link does not) and exchanges it for a session."""
    if request.method == "POST":
        attendee = services.login_link_redeem(event_slug=event, token=token)
        if attendee is None:
            return render(request, "portal/not_signed_in.html", {"message": _(LOGIN_LINK_INVALID)}, status=403)
        user = services.attendee_user_ensure(attendee=attendee)
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        return redirect("portal:lobby", event=event)
    link = services.login_link_find(event_slug=event, token=token)
    if link is None:
        return render(request, "portal/not_signed_in.html", {"message": _(LOGIN_LINK_INVALID)}, status=403)
    context = {"attendee": link.attendee, "event": link.attendee.event, "expires_at": link.expires_at}
    return render(request, "portal/login_link.html", context)


def _occupants(event: Event) -> dict[int, list[Attendee]]:
    present = present_in_rooms(event_id=event.pk)
    people = Attendee.objects.filter(pk__in=present).only("pk", "display_name", "external_id")
    by_room: dict[int, list[Attendee]] = defaultdict(list)
    for person in people:
        by_room[present[person.pk]].append(person)
    return by_room


@attendee_page
def lobby(request: HttpRequest, attendee: Attendee) -> HttpResponse:
    event = attendee.event
    occupants = _occupants(event)
    rooms = [
        (room, occupants.get(room.pk, [])) for room in Room.objects.filter(event=event).order_by("starts_at", "name")
    ]
    contents = Content.objects.filter(event=event).select_related("room").order_by("title")
    return _page(request, attendee, "portal/lobby.html", nav="lobby", rooms=rooms, contents=contents)


@attendee_page
def room(request: HttpRequest, attendee: Attendee, room: str) -> HttpResponse:
    room_obj = get_object_or_404(Room, event=attendee.event, external_id=room)
    here = [p for p in _occupants(attendee.event).get(room_obj.pk, []) if p.pk != attendee.pk]
    contents = Content.objects.filter(event=attendee.event, room=room_obj)
    return _page(request, attendee, "portal/room.html", room=room_obj, here=here, contents=contents)


@attendee_page
def content(request: HttpRequest, attendee: Attendee, content: str) -> HttpResponse:
    item = get_object_or_404(Content.objects.select_related("room"), event=attendee.event, external_id=content)
    return _page(request, attendee, "portal/content.html", content=item)


@attendee_page
def profile(request: HttpRequest, attendee: Attendee) -> HttpResponse:
    """The attendee edits their card (headline, company) and what they declare (interests, offers,
    seeks): their next suggestions use it at once."""
    form = ProfileForm(request.POST or None, attendee=attendee)
    saved = request.method == "GET" and request.GET.get("saved") == "1"
    if request.method == "POST" and form.is_valid():
        services.attendee_update_profile(attendee=attendee, **form.cleaned_data)
        return redirect(reverse("portal:profile", kwargs={"event": attendee.event.slug}) + "?saved=1")
    return _page(request, attendee, "portal/profile.html", nav="profile", form=form, saved=saved)


DIRECTORY_PAGE = 50


@attendee_page
def directory(request: HttpRequest, attendee: Attendee) -> HttpResponse:
    """Attendees who agreed to be suggested to others, searchable by name, headline and company and
    filterable by a declared topic; never the viewer themselves, nor anyone either of them blocked."""
    query = request.GET.get("q", "").strip()[:100]
    tag = request.GET.get("tag", "")
    blocked = Block.objects.filter(Q(blocker=attendee) | Q(blocked=attendee)).values_list("blocker_id", "blocked_id")
    hidden = {pk for pair in blocked for pk in pair} | {attendee.pk}
    people = Attendee.objects.filter(event=attendee.event, consent_be_recommended=True).exclude(pk__in=hidden)
    if query:
        people = people.filter(
            Q(display_name__icontains=query) | Q(headline__icontains=query) | Q(company__icontains=query)
        )
    tags = InterestTag.objects.filter(event=attendee.event).order_by("label")
    chosen = next((t for t in tags if t.slug == tag), None)
    if chosen is not None:
        people = people.filter(Q(interests=chosen) | Q(offers=chosen)).distinct()
    people = people.order_by("display_name", "pk")
    total = people.count()
    return _page(
        request,
        attendee,
        "portal/directory.html",
        nav="directory",
        people=people[:DIRECTORY_PAGE],
        total=total,
        query=query,
        tags=tags,
        chosen=chosen,
    )


CONSENTS = [
    (
        "consent_be_recommended",
        gettext_lazy("Suggest me to other attendees"),
        gettext_lazy("Others may see you in their “people to meet”."),
    ),
    (
        "consent_receive_recommendations",
        gettext_lazy("Show me people to meet"),
        gettext_lazy("You get suggestions in the widget and the API."),
    ),
    (
        "consent_training",
        gettext_lazy("Learn from my activity"),
        gettext_lazy("Rooms you join and content you watch train the matchmaking model."),
    ),
]


@attendee_page
def consents(request: HttpRequest, attendee: Attendee) -> HttpResponse:
    saved = False
    if request.method == "POST":
        attendee = services.attendee_set_consents(
            attendee=attendee, **{name: name in request.POST for name, _, _ in CONSENTS}
        )
        saved = True
    rows = [(name, label, help_text, getattr(attendee, name)) for name, label, help_text in CONSENTS]
    return _page(request, attendee, "portal/consents.html", nav="consents", consents=rows, saved=saved)


@attendee_page
def connections(request: HttpRequest, attendee: Attendee) -> HttpResponse:
    qs = Connection.objects.filter(Q(requester=attendee) | Q(recipient=attendee)).select_related(
        "requester", "recipient"
    )
    incoming = [c for c in qs if c.recipient_id == attendee.pk]
    outgoing = [c for c in qs if c.requester_id == attendee.pk]
    # Beside each request still to answer: what the requester saw, why the two of them match.
    pending = [c.requester_id for c in incoming if c.status == ConnectionStatus.REQUESTED]
    why = match_reasons(viewer=attendee, other_ids=pending)
    for c in incoming:
        c.why = [localize(r["text"]) for r in why.get(c.requester_id, [])]  # type: ignore[attr-defined]
    return _page(
        request,
        attendee,
        "portal/connections.html",
        nav="connections",
        incoming=incoming,
        outgoing=outgoing,
        pending=ConnectionStatus.REQUESTED,
        accepted=ConnectionStatus.ACCEPTED,
        error=request.GET.get("error", ""),
    )


@require_POST
@attendee_page
def connection_respond(request: HttpRequest, attendee: Attendee, connection_id: int) -> HttpResponse:
    connection = Connection.objects.filter(pk=connection_id, recipient=attendee).first()
    if connection is None:
        raise Http404(_("No such request to you."))
    url = reverse("portal:connections", kwargs={"event": attendee.event.slug})
    try:
        services.connection_respond(connection=connection, responder=attendee, accept=request.POST.get("accept") == "1")
    except ValidationError as exc:
        return redirect(f"{url}?{urlencode({'error': localize(exc.messages[0])})}")
    return redirect(url)


@attendee_page
def thread(request: HttpRequest, attendee: Attendee, connection_id: int) -> HttpResponse:
    """The conversation of a mutual connection (`events.messages`): live through the widget's
    socket (`static/matchmaking/chat.js`), and a plain form without scripts."""
    try:
        connection = messages.thread_for(attendee=attendee, connection_id=connection_id)
    except messages.NoThread as exc:
        raise Http404(_(NO_SUCH_CONVERSATION)) from exc
    error = ""
    if request.method == "POST":
        try:
            messages.message_send(connection=connection, sender=attendee, body=request.POST.get("body", ""))
            return redirect(request.path)
        except ValidationError as exc:
            error = " ".join(localize(m) for m in exc.messages)
        except messages.NoThread as exc:
            raise Http404(_(NO_SUCH_CONVERSATION)) from exc
    other = connection.recipient if connection.requester_id == attendee.pk else connection.requester
    rows = messages.thread_messages(connection=connection)
    return _page(
        request,
        attendee,
        "portal/thread.html",
        nav="connections",
        connection=connection,
        other=other,
        thread_messages=rows,
        last=rows[-1].number if rows else 0,
        names={attendee.external_id: attendee.display_name, other.external_id: other.display_name},
        error=error,
    )


@csrf_exempt  # the signed token is the authority; a mail client's one-click POST carries no CSRF token
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The link at the bottom of every email (and its List-Unsubscribe header). Opening it asks; its
    button, or a mail client's one-click POST (RFC 8058), stops that kind of email at once."""
    read = notifications.unsubscribe_read(token)
    if read is None:
        return render(request, "portal/unsubscribe.html", {"attendee": None}, status=404)
    attendee, kind = read
    done = request.method == "POST"
    if done:
        notifications.unsubscribe(attendee=attendee, kind=kind)
    context = {"attendee": attendee, "kind_name": _(notifications.KIND_NAMES[kind]), "done": done}
    return render(request, "portal/unsubscribe.html", context)


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The language switcher of every page: Django's own view sets the cookie and goes back (to a
    safe `next` only); a signed-in attendee's rows remember the choice, for the emails they get."""
    response = i18n.set_language(request)
    code = request.POST.get("language", "")
    if request.user.is_authenticated and code in dict(settings.LANGUAGES):
        Attendee.objects.filter(user=request.user).exclude(language=code).update(language=code)
    return response
