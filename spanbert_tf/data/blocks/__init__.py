"""Pretraining blocks any backend reads without TensorFlow: memory-mapped numpy shards."""
