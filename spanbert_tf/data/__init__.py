"""Data: documents -> wordpieces -> single-segment blocks -> masked TFRecords."""

