"""Named-entity recognition: nested span classification and flat token classification."""
