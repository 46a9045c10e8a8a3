"""Settings of `benchmarks/serve.py`: the project's own, with the live source replaced by a
precomputed neighbour table (`benchmarks.serve_backend`). Everything else (PostgreSQL, Redis,
middleware, auth, DRF) is exactly what production runs."""

from matchmaking_site.settings import *  # noqa: F403

RECOMMENDATION_BACKENDS = {
    **RECOMMENDATION_BACKENDS,  # noqa: F405
    "local": "benchmarks.serve_backend.TableBackend",
    "rules": "benchmarks.serve_backend.TableBackend",
}
LOGGING["root"]["level"] = "WARNING"  # noqa: F405
