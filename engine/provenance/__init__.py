"""Signals outside the fingerprint: file metadata, C2PA, the reference SD watermark."""
