"""Data, in three jobs: `writing` (documents → blocks → TFRecord shards), `masking` (§3.1 and
the SBO targets) and `input` (the training input). `features` names the features and their
shapes for all three."""
