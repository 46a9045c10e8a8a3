from rest_framework import serializers

from ..models import Event


class EventOutputSerializer(serializers.ModelSerializer):
    organization = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Event
        fields = [
            "slug",
            "name",
            "organization",
            "timezone",
            "live_starts_at",
            "live_ends_at",
            "on_demand_ends_at",
            "phase",
            "backend",
            "qualifying_threshold",
        ]
