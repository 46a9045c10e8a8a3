"""The local model, seen from Django. The arithmetic lives in `recommendations.engine` (no Django);
this package owns the id <-> index mappings, which facts become inputs, and the bookkeeping around
versions:

- `inputs`: the engine's inputs built from the database (`load_event_data`);
- `fit`: configuration, the per-event choice of ranking, the fit into a stored artifact, metrics;
- `loaded`: published versions in memory per process, and the lists ranked from them;
- `realtime`: the worker's update of its copy and the lists it writes to the cache;
- `reasons`: readable reasons for a pair;
- `backend`: the recommendation backend (serving, and the training seam)."""
