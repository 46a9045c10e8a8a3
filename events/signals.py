"""What `events/` announces, for the apps that derive data from it (recommendations/ connects here).

`events/` never imports those apps; they listen. The signal carries `event_id` (int) and
`interaction_ids` (list[int]), once per committed batch, never once per interaction.
"""

import django.dispatch

# Sent by the outbox worker (events.process_interactions, or the sweeper) inside the transaction
# that marks the rows processed. Durable downstream work belongs here (model update, forwarding to
# Personalize): each interaction reaches it exactly once per successful transaction, and a receiver
# that raises rolls the mark back so that the sweeper retries the rows later. Work that must not
# run for a claim that rolls back (the live model update and its pushes) waits for the commit
# with `transaction.on_commit`.
interactions_processing = django.dispatch.Signal()

# Sent by `events.services.attendee_update_profile` after an attendee changed what they declared
# (interests, offers, seeks), with `event_id` and `attendee_id`: every list of the event may change
# (their own at once, and theirs in others' through the rules engine), and the next training sees
# the answers through the questionnaire rows the service rewrote.
declared_changed = django.dispatch.Signal()

# Sent after commit by `events.upserts.upsert` (the platform's bulk upserts), with `event_id`,
# `kind` ("attendee", "room", "content item", "topic") and `ids` (the pks of the rows created or
# changed): the event's lists may change (names and reasons, consents, groups, declarations), and
# changed attendees' own lists at once.
facts_changed = django.dispatch.Signal()
