"""A platform registers where it hears what happened (`events.webhooks`), with its API key: list,
register (the signing secret is shown in that answer, and again only when rotated), change, pause
or remove an endpoint, rotate its secret, and read its recent deliveries with their state. Only an
organization's API key may; another organization's endpoint is a 404.

Addresses: https only, and never a loopback, private, link-local or reserved address written as
an IP, nor `localhost`: the server posts there, so the API must not let a key holder point it at
the inside of our network. An organizer may still enter any address in the admin (tests use a local
server that way)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import WebhookDelivery, WebhookEndpoint, new_webhook_secret
from ..webhooks import KINDS
from .auth import ApiKeyUser

HTTPS_ONLY = "Use an https:// address."
NOT_PUBLIC = "Use a public address: loopback, private and link-local addresses are refused."
KEY_ONLY = "Only an organization's API key manages webhook endpoints."


class IsApiKey(BasePermission):
    message = KEY_ONLY

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, ApiKeyUser)


def _public_https(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise serializers.ValidationError(HTTPS_ONLY)
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise serializers.ValidationError(NOT_PUBLIC)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: resolved when posting
    if not ip.is_global:
        raise serializers.ValidationError(NOT_PUBLIC)
    return url


class WebhookEndpointSerializer(serializers.ModelSerializer):
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=KINDS),
        required=False,
        max_length=len(KINDS),
        help_text="Kinds to send (connection.accepted, meeting.booked); empty or left out: all.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "kinds", "active", "failing_until", "created_at"]
        read_only_fields = ["id", "failing_until", "created_at"]

    def validate_url(self, value: str) -> str:
        return _public_https(value)

    def validate_kinds(self, value: list[str]) -> list[str]:
        return sorted(set(value))


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="Checks the signatures; shown only now.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookSecretSerializer(serializers.Serializer):
    secret = serializers.CharField(read_only=True)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event.slug", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "message_id",
            "kind",
            "event",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        ]


def _endpoints(request):
    """The caller's organization's endpoints (`IsApiKey` has checked the caller is a key)."""
    return WebhookEndpoint.objects.filter(organization=request.user.organization).order_by("pk")


class WebhookEndpointListView(generics.ListCreateAPIView):
    """The organization's webhook endpoints; POST registers one and answers with its secret."""

    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsApiKey]

    def get_queryset(self):
        return _endpoints(self.request)

    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer})
    def post(self, request, *args, **kwargs):
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save(organization=request.user.organization)
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class WebhookEndpointDetailView(generics.RetrieveUpdateDestroyAPIView):
    """One endpoint: change its address or kinds, pause it (`active: false`), or remove it with
    its delivery history."""

    serializer_class = WebhookEndpointSerializer
    permission_classes = [IsApiKey]
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return _endpoints(self.request)


class WebhookSecretRotateView(APIView):
    """A new signing secret, effective for the next attempt of every delivery; the old one stops."""

    permission_classes = [IsApiKey]

    @extend_schema(request=None, responses={200: WebhookSecretSerializer, 404: OpenApiResponse()})
    def post(self, request, pk: int):
        with transaction.atomic():
            endpoint = generics.get_object_or_404(_endpoints(request).select_for_update(), pk=pk)
            endpoint.secret = new_webhook_secret()
            endpoint.save(update_fields=["secret"])
        return Response({"secret": endpoint.secret})


class WebhookDeliveryListView(generics.ListAPIView):
    """The endpoint's deliveries, newest first, with how each went (paged like every list)."""

    serializer_class = WebhookDeliverySerializer
    permission_classes = [IsApiKey]

    def get_queryset(self):
        endpoint = generics.get_object_or_404(_endpoints(self.request), pk=self.kwargs["pk"])
        return endpoint.deliveries.select_related("event").order_by("-created_at", "-pk")
