"""Reading and writing bytes: the JSONL layer, input shards, staged outputs."""
