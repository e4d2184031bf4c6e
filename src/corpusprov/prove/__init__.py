"""The proof: verify, replay, trace, diff, and the DVC files they read."""
