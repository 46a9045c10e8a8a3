from django.contrib import admin

from .models import MatchmakingRule


@admin.register(MatchmakingRule)
class MatchmakingRuleAdmin(admin.ModelAdmin):
    list_display = ["event", "kind", "signal", "from_group", "to_group", "tag", "value", "enabled"]
    list_filter = ["kind", "enabled", "event"]
    list_editable = ["value", "enabled"]
    search_fields = ["event__name", "from_group", "to_group", "tag__label", "note"]
    autocomplete_fields = ["tag"]
    list_select_related = ["event", "tag"]
