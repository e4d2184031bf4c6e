"""The record: the manifest model, run provenance, redaction."""
