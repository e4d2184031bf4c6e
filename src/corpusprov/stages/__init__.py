"""The stages: the shared stage core, merge and aggregate, dedup and statistics."""
