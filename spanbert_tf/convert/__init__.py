"""Checkpoint conversion: Hugging Face / TF1 BERT and SpanBERT checkpoints <-> ours
(`checkpoint.convert_checkpoint`, the front of `convert_checkpoint.py`), and Keras weight
assignment by name with shape checks (`keras_weights`)."""
