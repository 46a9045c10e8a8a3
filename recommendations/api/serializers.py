"""Input and output serializers, split by direction."""

from rest_framework import serializers

from recommendations.serving.lists import MAX_RESULTS

NUM_RESULTS_RANGE = f"num_results must be an integer from 1 to {MAX_RESULTS}."


class RecommendationsQuerySerializer(serializers.Serializer):
    num_results = serializers.IntegerField(
        required=False,
        default=10,
        min_value=1,
        max_value=MAX_RESULTS,
        error_messages={
            "invalid": NUM_RESULTS_RANGE,
            "min_value": NUM_RESULTS_RANGE,
            "max_value": NUM_RESULTS_RANGE,
        },
    )


class ReasonOutputSerializer(serializers.Serializer):
    kind = serializers.CharField(
        help_text="A stable machine name: same_time, shared_room, shared_content, shared_interest, complementary, "
        "planned_session, mutual_contacts, repeat, here_now (in the viewer's room now), and the generic ones, "
        "which follow the personal ones: online, sociable, active, popular, attending, organizer_boost"
    )
    text = serializers.CharField(help_text="The sentence shown to the attendee")
    weight = serializers.FloatField(help_text="Its share of the score")


class SuggestionOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    display_name = serializers.CharField()
    headline = serializers.CharField()
    company = serializers.CharField()
    score = serializers.FloatField()
    here_now = serializers.BooleanField()
    reasons = ReasonOutputSerializer(many=True)
    # DRF's serializer metaclass moves declared fields out of the class, so this does not shadow the
    # `Field.source` attribute the stubs see on every serializer (serializers are fields).
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="The source of this entry: the one that answered, or rules / popularity where they "
        "filled a list it left short, here_now for someone in the viewer's room"
    )


class RecommendationsOutputSerializer(serializers.Serializer):
    items = SuggestionOutputSerializer(many=True)
    # Not Field.source: a declared field (see SuggestionOutputSerializer.source).
    source = serializers.CharField(  # type: ignore[assignment]
        help_text="rules, local, personalize, batch or popularity: the source that answered"
    )
    model_version = serializers.IntegerField(allow_null=True, help_text="Number of the model version, if any")
    phase = serializers.CharField()
    cached = serializers.BooleanField()
    empty_reason = serializers.CharField(help_text="Why the list is empty, when it is for a reason")
    empty_code = serializers.CharField(
        help_text="The same for machines: receive_off (the attendee turned suggestions off), closed (the event "
        "is closed), or empty"
    )


class RecordedOutputSerializer(serializers.Serializer):
    recorded = serializers.BooleanField()
