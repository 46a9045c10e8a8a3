"""Listening to `events/`: new qualifying interactions update the live local model.

`events/` announces committed interactions with a Django signal (it must not import this app).
Where the signal lives depends on the ingestion code: the durable one, sent by the outbox worker
for each claimed batch (`events.outbox.interactions_processing`), is preferred; the in-process
"after commit" hint (`events.signals` / `events.outbox` `interactions_committed`) is the
fallback. Whichever is found first is connected; none found (an older `events/`) connects nothing.
"""

import importlib
import logging

from .local import realtime_apply

logger = logging.getLogger(__name__)

SIGNALS = (
    ("events.outbox", "interactions_processing"),
    ("events.signals", "interactions_committed"),
    ("events.outbox", "interactions_committed"),
)


def on_interactions(sender, *, event_id: int, interaction_ids: list[int], **kwargs) -> None:
    """Best effort: a failed live update is logged and never fails ingestion, because the next
    training reads the same rows from the database anyway."""
    try:
        realtime_apply(event_id=event_id, interaction_ids=list(interaction_ids))
    except Exception:
        logger.exception("Real-time model update failed for event %s (%d interactions)", event_id, len(interaction_ids))


def connect() -> str:
    """Connect `on_interactions` to the first signal found; return its dotted name ("" if none)."""
    for module_name, attr in SIGNALS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        signal = getattr(module, attr, None)
        if signal is not None:
            signal.connect(on_interactions, dispatch_uid="recommendations.realtime")
            return f"{module_name}.{attr}"
    return ""
