"""Coreference resolution (c2f-coref "independent" on SpanBERT): CoNLL-2012 data, metrics, model."""
