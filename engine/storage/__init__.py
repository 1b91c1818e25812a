"""Fingerprints at rest: the card and tensor file format, the store, model names."""
