"""Export: SavedModels for TF Serving and checkpoint conversion."""

