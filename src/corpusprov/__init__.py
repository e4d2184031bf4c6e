"""corpusprov: provenance-stamped merging and aggregation of video-quality corpus JSONL shards."""

from __future__ import annotations

__all__ = ["__version__"]

#: The release, which pyproject.toml reads from here. A literal, not importlib.metadata's
#: lookup: that import cost every worker process ~55 ms of its start (the main process
#: still imports it, for the package versions the manifest records).
__version__ = "0.1.0"
