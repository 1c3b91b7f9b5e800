"""Coreference resolution (c2f-coref, independent variant)."""
