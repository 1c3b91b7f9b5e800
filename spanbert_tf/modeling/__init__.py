"""Modeling: keras-hub BERT backbone, MLM and SBO heads, the pretrainer."""

