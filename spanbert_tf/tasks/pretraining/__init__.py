"""pretraining task."""
