"""The demo zoo: small generators with known lineage, trained from photos that ship with scikit-image."""
