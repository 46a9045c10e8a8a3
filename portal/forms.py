"""The attendee's own profile form: what others see on their card, and what they declare."""

from django import forms
from django.utils.translation import gettext_lazy as _

from events.models import Attendee, InterestTag

TAG_HELP = {
    "interests": _("Topics you care about: people who share them are suggested to you."),
    "offers": _("What you can help others with: people who seek it are suggested to you."),
    "seeks": _("What you are looking for: people who offer it are suggested to you."),
}


class ProfileForm(forms.Form):
    headline = forms.CharField(
        label=_("Headline"), max_length=Attendee._meta.get_field("headline").max_length, required=False
    )
    company = forms.CharField(
        label=_("Company"), max_length=Attendee._meta.get_field("company").max_length, required=False
    )
    interests = forms.ModelMultipleChoiceField(
        label=_("Interests"), queryset=InterestTag.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    offers = forms.ModelMultipleChoiceField(
        label=_("Offers"), queryset=InterestTag.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )
    seeks = forms.ModelMultipleChoiceField(
        label=_("Seeks"), queryset=InterestTag.objects.none(), required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, attendee: Attendee, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "headline": attendee.headline,
                "company": attendee.company,
                "interests": list(attendee.interests.all()),
                "offers": list(attendee.offers.all()),
                "seeks": list(attendee.seeks.all()),
            },
        )
        super().__init__(*args, **kwargs)
        tags = InterestTag.objects.filter(event_id=attendee.event_id).order_by("label")  # this event's only
        for name, help_text in TAG_HELP.items():
            field = self.fields[name]
            assert isinstance(field, forms.ModelMultipleChoiceField)
            field.queryset = tags
            field.help_text = help_text
