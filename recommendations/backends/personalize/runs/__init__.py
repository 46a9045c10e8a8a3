"""Personalize runs as persisted state machines: the machine (`machine`), what a step works with
(`context`), and the three step sets (`training_steps`, `batch_steps`, `teardown_steps`)."""
