"""What a data dir's metadata.json says about its records, checked against a model (no TensorFlow).

`records_kind` tells offline-masked from unmasked records; `check_metadata` stops with a clear
message naming metadata.json where the data does not fit the model. Shared by the tf.data
pipeline (`input_pipeline`, which re-exports both) and the TF-free block input
(`spanbert_tf.data.blocks`).

Example:
```python
check_metadata(metadata, vocab_size=28996, max_position_embeddings=512)
records_kind(metadata)    # "masked" or "unmasked"
```
"""

from spanbert_tf.data import features
from spanbert_tf.errors import InputError

METADATA_FILE = "metadata.json"


def vocab_of(meta):
    """metadata.json's `vocab` dict ({} when missing)."""
    vocab = meta.get("vocab")
    return vocab if isinstance(vocab, dict) else {}


def records_kind(metadata):
    """"masked" (offline masking) or "unmasked" (`--masking=none`: dynamic masking)."""
    return metadata.get("records", "masked")


def check_metadata(metadata, vocab_size=None, max_position_embeddings=None,
                   max_pair_targets=None, max_seq_length=None, max_predictions_per_seq=None):
    """Raises `InputError` naming metadata.json where the data does not fit the model.

    Checks the feature spec against `features.py`, the vocabulary size, that
    L <= max_position_embeddings, that SBO relative positions fit
    `max_pair_targets`, and L / P against expected values when given.
    """
    source = metadata.get("metadata_path", METADATA_FILE)
    L, P = metadata["max_seq_length"], metadata["max_predictions_per_seq"]
    spec = metadata.get("feature_spec")
    expected = (features.unmasked_feature_spec_json(L) if records_kind(metadata) == "unmasked"
                else features.feature_spec_json(L, P))
    if spec is not None and spec != expected:
        raise InputError(
            f"{source}: feature_spec differs from spanbert_tf.data.features for L={L}, P={P} "
            "(data written by another version? recreate it)"
        )
    problems = []
    if max_seq_length is not None and L != max_seq_length:
        problems.append(f"max_seq_length is {L} in the data but {max_seq_length} is expected")
    if max_predictions_per_seq is not None and P != max_predictions_per_seq:
        problems.append(
            f"max_predictions_per_seq is {P} in the data but {max_predictions_per_seq} is expected"
        )
    if max_position_embeddings is not None and L > max_position_embeddings:
        problems.append(
            f"max_seq_length {L} exceeds the model's max_position_embeddings "
            f"{max_position_embeddings}"
        )
    data_vocab = vocab_of(metadata).get("size")
    if vocab_size is not None and data_vocab is not None and data_vocab != vocab_size:
        problems.append(f"vocab size is {data_vocab} in the data but the model has {vocab_size}")
    targets = (metadata.get("settings") or {}).get("max_pair_targets")
    if max_pair_targets is not None and targets is not None and targets > max_pair_targets:
        problems.append(
            f"SBO max_pair_targets is {targets} in the data but the model embeds only "
            f"{max_pair_targets} relative positions"
        )
    if problems:
        raise InputError(f"{source} does not match the model config: " + "; ".join(problems))
