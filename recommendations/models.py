"""Derived data: model versions, training runs, suggestions. Reads `events/`; `events/` never
imports this app."""
