"""Downstream tasks: SQuAD, GLUE, TACRED."""

