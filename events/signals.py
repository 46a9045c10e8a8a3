"""What `events/` announces, for the apps that derive data from it (recommendations/ connects here).

`events/` never imports those apps; they listen. Both signals carry `event_id` (int) and
`interaction_ids` (list[int]), once per committed batch, never once per interaction.
"""

import django.dispatch

# Sent after commit, in the process that wrote the rows. A hint for quick in-process reactions
# (cheap counters): sent robustly, so a failing receiver is logged and cannot fail the request
# whose rows are already committed, and not sent again if the process dies right after. That
# process is usually a web server: CPU-heavy reactions do not belong here (they hold the GIL that
# the process's requests need) but on `interactions_processing`, which runs in the Celery workers.
interactions_committed = django.dispatch.Signal()

# Sent by the outbox worker (events.process_interactions, or the sweeper) inside the transaction
# that marks the rows processed. Durable downstream work belongs here (model update, forwarding to
# Personalize): each interaction reaches it exactly once per successful transaction, and a receiver
# that raises rolls the mark back so that the sweeper retries the rows later. Work that must not
# run for a claim that rolls back (the live model update and its pushes) waits for the commit
# with `transaction.on_commit`.
interactions_processing = django.dispatch.Signal()
