"""THE pretraining feature spec: names, dtypes and shapes, in one place.

Every tf.train.Example written by `create_pretraining_data.py` holds exactly these
features (L = max_seq_length, P = max_predictions_per_seq), zero-padded:

| name                      | dtype   | shape | meaning                                          |
|---------------------------|---------|-------|--------------------------------------------------|
| `input_ids`               | int64   | [L]   | `[CLS] block [SEP]` after masking                |
| `input_mask`              | int64   | [L]   | 1 for real tokens, 0 for padding                 |
| `segment_ids`             | int64   | [L]   | all 0 (single segment, no NSP: SpanBERT §3.3)    |
| `masked_lm_positions`     | int64   | [P]   | masked positions, ascending, first slots         |
| `masked_lm_ids`           | int64   | [P]   | original token id at each masked position        |
| `masked_lm_weights`       | float32 | [P]   | 1.0 for a real slot, 0.0 for padding             |
| `span_left_positions`     | int64   | [P]   | position of the token just left of the span      |
| `span_right_positions`    | int64   | [P]   | position of the token just right of the span     |
| `span_relative_positions` | int64   | [P]   | 0-based offset of the token inside its span      |
| `sbo_weights`             | float32 | [P]   | 1.0 where the masked token has an SBO target     |

The first six are google-research/bert's names, so BERT tooling can read our files.
Everything else in the project imports these names from here.

Unmasked records (`create_pretraining_data.py --masking=none`, masked on the fly
by `dynamic_masking.py`) hold only `input_ids`, `input_mask`, `segment_ids` (as
above, before masking) and `example_id` (int64 [1], stable: seeds the masks).

Example:
```python
spec = pretraining_feature_spec(max_seq_length=128, max_predictions_per_seq=20)
parsed = tf.io.parse_single_example(serialized, spec)
```
"""

SEQUENCE_FEATURES = ("input_ids", "input_mask", "segment_ids")
PREDICTION_FLOAT_FEATURES = ("masked_lm_weights", "sbo_weights")
PREDICTION_FEATURES = (
    "masked_lm_positions",
    "masked_lm_ids",
    "masked_lm_weights",
    "span_left_positions",
    "span_right_positions",
    "span_relative_positions",
    "sbo_weights",
)
FEATURE_NAMES = SEQUENCE_FEATURES + PREDICTION_FEATURES
FLOAT_FEATURES = frozenset(PREDICTION_FLOAT_FEATURES)


def feature_shapes(max_seq_length, max_predictions_per_seq):
    """Returns {name: (dtype_name, length)} for every feature, in file order."""
    shapes = {}
    for name in FEATURE_NAMES:
        length = max_seq_length if name in SEQUENCE_FEATURES else max_predictions_per_seq
        shapes[name] = ("float32" if name in FLOAT_FEATURES else "int64", length)
    return shapes


def feature_spec_json(max_seq_length, max_predictions_per_seq):
    """The feature spec as plain JSON-able data (written to metadata.json)."""
    return {
        name: {"dtype": dtype, "shape": [length]}
        for name, (dtype, length) in feature_shapes(
            max_seq_length, max_predictions_per_seq
        ).items()
    }


def pretraining_feature_spec(max_seq_length, max_predictions_per_seq):
    """The `tf.io.parse_example` spec of one pretraining example."""
    import tensorflow as tf

    return {
        name: tf.io.FixedLenFeature(
            [length], tf.float32 if dtype == "float32" else tf.int64
        )
        for name, (dtype, length) in feature_shapes(
            max_seq_length, max_predictions_per_seq
        ).items()
    }



def unmasked_feature_shapes(max_seq_length):
    """{name: (dtype_name, length)} of an unmasked record, in file order."""
    shapes = {name: ("int64", max_seq_length) for name in SEQUENCE_FEATURES}
    shapes["example_id"] = ("int64", 1)
    return shapes


def unmasked_feature_spec_json(max_seq_length):
    """The unmasked records' spec as plain JSON-able data (metadata.json)."""
    return {name: {"dtype": dtype, "shape": [length]}
            for name, (dtype, length) in unmasked_feature_shapes(max_seq_length).items()}


def unmasked_feature_spec(max_seq_length):
    """The `tf.io.parse_example` spec of one unmasked record."""
    import tensorflow as tf

    return {name: tf.io.FixedLenFeature([length], tf.int64)
            for name, (_, length) in unmasked_feature_shapes(max_seq_length).items()}
