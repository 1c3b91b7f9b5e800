"""squad task."""
