"""The organizer's event form: the per-interaction-type settings as one validated number each,
instead of two JSON text boxes (a typo there was a 500 or a silently ignored key)."""

from django import forms

from .enums import DEFAULT_DWELL_THRESHOLDS, DEFAULT_INTERACTION_WEIGHTS, InteractionType

MAX_WEIGHT = 100.0
MAX_DWELL_SECONDS = 24 * 3600


def weight_field(kind: InteractionType) -> str:
    return f"weight_{kind.value}"


def dwell_field(kind: InteractionType) -> str:
    return f"dwell_{kind.value}"


#: the types with a dwell (rooms, content): the only ones a qualifying threshold applies to
DWELL_TYPES = tuple(InteractionType(kind) for kind in DEFAULT_DWELL_THRESHOLDS)
WEIGHT_FIELDS = tuple(weight_field(kind) for kind in InteractionType)
DWELL_FIELDS = tuple(dwell_field(kind) for kind in DWELL_TYPES)


class _EventAdminForm(forms.ModelForm):
    """The admin's base form for `Event` (`EventAdmin.form`): the admin gives it the model and the
    fields (its fieldsets, which leave out the two JSON fields these per-type fields fill)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        weights = {**DEFAULT_INTERACTION_WEIGHTS, **(self.instance.interaction_weights or {})}
        dwell = {**DEFAULT_DWELL_THRESHOLDS, **(self.instance.dwell_thresholds or {})}
        for kind in InteractionType:
            self.initial.setdefault(weight_field(kind), weights.get(kind.value, 1.0))
        for kind in DWELL_TYPES:
            self.initial.setdefault(dwell_field(kind), dwell.get(kind.value, 0))

    def save(self, commit=True):
        data = self.cleaned_data
        self.instance.interaction_weights = {kind.value: data[weight_field(kind)] for kind in InteractionType}
        self.instance.dwell_thresholds = {kind.value: data[dwell_field(kind)] for kind in DWELL_TYPES}
        return super().save(commit)


def _type_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for kind in InteractionType:
        fields[weight_field(kind)] = forms.FloatField(
            label=kind.label,
            min_value=0.0,
            max_value=MAX_WEIGHT,
            help_text=f"Weight of one such interaction in the model (0 ignores them; default "
            f"{DEFAULT_INTERACTION_WEIGHTS.get(kind.value, 1.0):g}).",
            widget=forms.NumberInput(attrs={"step": "0.1"}),
        )
    for kind in DWELL_TYPES:
        fields[dwell_field(kind)] = forms.IntegerField(
            label=f"{kind.label}: seconds to qualify",
            min_value=0,
            max_value=MAX_DWELL_SECONDS,
            help_text=f"Shorter visits do not count (default {DEFAULT_DWELL_THRESHOLDS[kind.value]} s).",
        )
    return fields


# Declared on the class (the admin's fieldsets name them), one per interaction type.
EventAdminForm = type("EventAdminForm", (_EventAdminForm,), _type_fields())
