"""The garbage collector of a serving process (the ASGI application applies `tune_for_serving`).

WHY: CPython's cyclic collector stops every thread of the process while it runs, and a full
(generation 2) collection walks every container object the process holds: the imported code, the
loaded models, the open sockets' state. In benchmarks/push_latency.py (1,000 widget sockets, two
uvicorn processes) each process ran three or four full collections in a 400-move run, of 170 to
335 ms each, and they were most of the push's p99. `gc.freeze()` after start-up moves everything
loaded so far out of the collector's reach: full collections then took at most about 100 ms, and
the p99 fell from 312-417 ms to 269-313 ms in five pairs of runs taken in turn (README, "Push
latency").

Thresholds stay Python's (700,10,10) unless GC_THRESHOLDS says otherwise: raised to 50000,20,20
they removed full collections from the push benchmark too, but each young collection then walked
tens of thousands of objects, and the load benchmark's p99 for short requests went from 36 ms to
56-184 ms.

Settings: GC_FREEZE (default true), GC_THRESHOLDS (default off: Python's; one to three integers).
"""

from __future__ import annotations

import gc

from django.conf import settings


def parse_thresholds(value: str) -> tuple[int, ...] | None:
    """GC_THRESHOLDS as `gc.set_threshold` takes it: "off" for Python's own, else one to three
    positive integers separated by commas. ValueError says what is wrong."""
    text = value.strip().lower()
    if text == "off":
        return None
    try:
        numbers = tuple(int(part) for part in text.split(","))
    except ValueError:
        numbers = ()
    if not 1 <= len(numbers) <= 3 or any(n <= 0 for n in numbers):
        raise ValueError(f"GC_THRESHOLDS must be off or one to three positive integers like 50000,20,20, got {value!r}")
    return numbers


def tune_for_serving() -> None:
    """Apply GC_THRESHOLDS, then (GC_FREEZE) collect once and freeze what start-up loaded."""
    if settings.GC_THRESHOLDS is not None:
        gc.set_threshold(*settings.GC_THRESHOLDS)
    if settings.GC_FREEZE:
        gc.collect()
        gc.freeze()
