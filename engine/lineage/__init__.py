"""Many models at once: cross-detection, lineage inference and exports, attribution, the case report."""
