"""Why two attendees match, for a pair that is not (or no longer) in a list: the connections
page shows it beside an incoming request, so that the recipient sees what the requester saw.

The same evidence the lists use: the published local model's explanation of the pair (shared
sessions, people met in common, ...) and the rules engine's (interests, offers and seeks, planned
sessions), personal reasons first. Nothing is inferred for a pair the sources know nothing about.
"""

from __future__ import annotations

from events.models import Attendee
from recommendations.backends import Reason
from recommendations.backends.local.loaded import loaded_model, published_version
from recommendations.backends.local.reasons import render_pair_reasons
from recommendations.backends.rules import declared_for, load_rules, pair_candidates
from recommendations.serving.lists import personal_first

MATCH_REASONS_SHOWN = 3


def match_reasons(*, viewer: Attendee, other_ids: list[int]) -> dict[int, list[dict]]:
    """{other attendee pk: up to MATCH_REASONS_SHOWN reasons, as the lists give them} for the
    pairs (viewer, other) with any evidence; the viewer's own consents are honoured (without
    training consent, their activity is not used: declared data only)."""
    if not other_ids:
        return {}
    event = viewer.event
    found: dict[int, list[Reason]] = {pk: [] for pk in other_ids}
    version = published_version(event=event) if viewer.consent_training else None
    if version is not None:
        loaded = loaded_model(version)
        a = loaded.index_of(viewer.pk)
        pairs = [(a, b) for pk in other_ids if a is not None and (b := loaded.index_of(pk)) is not None]
        if pairs:
            with loaded.lock:
                explained = render_pair_reasons(loaded, pairs)
            for (_, b), why in explained.items():
                found[int(loaded.attendee_ids[b])].extend(r for r in why if r.weight > 0)
    declared = declared_for(attendee_ids=[viewer.pk]).get(viewer.pk)
    if declared is not None:
        for candidate in pair_candidates(
            event=event, viewer=declared, other_ids=other_ids, rules=load_rules(event=event)
        ):
            found[candidate.attendee_id].extend(candidate.reasons)
    out = {}
    for pk, reasons in found.items():
        texts, unique = set(), []
        for r in reasons:
            if r.text not in texts:
                texts.add(r.text)
                unique.append({"kind": r.kind, "text": r.text, "weight": r.weight})
        if unique:
            out[pk] = personal_first(unique)[:MATCH_REASONS_SHOWN]
    return out
