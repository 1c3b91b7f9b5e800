"""classification task."""
