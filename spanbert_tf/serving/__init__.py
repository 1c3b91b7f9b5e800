"""Leaf helpers for SavedModels and TF Serving: publishing with an op check (`ops`), the
encoder input specs (`inputs`), a TF-Serving-compatible REST client (`client`).

Imports nothing of the project above layer 0 (errors, io_utils), so every task's export imports
it downward."""
