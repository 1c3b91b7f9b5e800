"""Dynamic masking in numpy: the masks of the tf.data pipeline, without TensorFlow.

`NumpyDynamicMasker.mask_batch(input_ids, lengths, example_ids, seed, epoch)` masks a batch of
unmasked `[CLS] block [SEP]` rows exactly as `input_pipeline.mask_records` (with
`DynamicMasker`) does for the same seed and epoch: the draws of each example come from
`stateless_draws.masking_draws_for` (TensorFlow's stateless Philox, bit for bit) and are
applied by `masking_draws.mask_with_draws` (the offline `Masker` code fed those draws, which
`DynamicMasker.apply` equals). The result is the `features.py` batch (int32 ids and
positions, float32 weights), ready for the model.

`reference_masker_for_records` is the `Masker` of a records dir's metadata and masking flags
(special ids checked against the vocabulary, uniform or unigram random tokens): what
`dynamic_masking.masker_for_records` builds its TF masker from too.

Example:
```python
masker = NumpyDynamicMasker(reference_masker_for_records(metadata, MaskingConfig(), vocab),
                            metadata["max_seq_length"])
batch = masker.mask_batch(ids, lengths, example_ids, seed=12345, epoch=0)
batch["masked_lm_positions"].shape      # (B, max_predictions_per_seq)
```
"""

import numpy as np

from spanbert_tf.data import features
from spanbert_tf.data.masking.masker import Masker
from spanbert_tf.data.masking.masking_draws import DrawLayout, mask_with_draws
from spanbert_tf.data.masking.stateless_draws import masking_draws_for
from spanbert_tf.data.writing.instances import random_token_candidates
from spanbert_tf.errors import InputError
from spanbert_tf.tokenization import BertWordpieceTokenizer

_SLOT_FIELDS = (("masked_lm_positions", "masked_positions"), ("masked_lm_ids", "masked_ids"),
                ("span_left_positions", "span_left_positions"),
                ("span_right_positions", "span_right_positions"),
                ("span_relative_positions", "span_relative_positions"))


def reference_masker_for_records(metadata, config, vocab_file, do_lower_case=False,
                                 random_token_source="uniform"):
    """The numpy `Masker` of unmasked records (`--masking=none`) and masking settings.

    Raises `InputError` naming the metadata file when the records cannot be masked so.
    """
    return Masker(config, *masking_inputs_for_records(metadata, vocab_file, do_lower_case,
                                                      random_token_source))


def masking_inputs_for_records(metadata, vocab_file, do_lower_case=False,
                               random_token_source="uniform"):
    """(mask_id, word_start_table, random_token_ids, random_token_probs or None) of unmasked
    records: the `Masker` / `DynamicMasker` arguments besides the config."""
    source = metadata.get("metadata_path", "metadata.json")
    if metadata.get("records") != "unmasked":
        raise InputError(f"{source}: the records are already masked (offline masking); "
                         "dynamic masking needs records written with --masking=none")
    tokenizer = BertWordpieceTokenizer(vocab_file, do_lower_case)
    special = metadata.get("special_token_ids") or {}
    for name, value in (("[CLS]", tokenizer.cls_id), ("[SEP]", tokenizer.sep_id),
                        ("[MASK]", tokenizer.mask_id)):
        if name in special and special[name] != value:
            raise InputError(f"{source}: special_token_ids {name} is {special[name]}, "
                             f"but {vocab_file} has {value}")
    candidates = random_token_candidates(tokenizer)
    probs = None
    if random_token_source == "unigram":
        counts = metadata.get("unigram_counts")
        if not isinstance(counts, list) or len(counts) != tokenizer.vocab_size:
            raise InputError(
                f"{source} has no unigram_counts of {tokenizer.vocab_size} wordpieces: write "
                "the records with --random_token_source=unigram, or mask with "
                "--random_token_source=uniform")
        weights = np.asarray(counts, np.float64)[candidates]
        probs = weights if weights.sum() > 0 else None
    elif random_token_source != "uniform":
        raise InputError(f"random_token_source must be uniform or unigram, got "
                         f"{random_token_source!r}")
    return tokenizer.mask_id, tokenizer.word_start_table, candidates, probs


class NumpyDynamicMasker:
    """Masks unmasked batches like `DynamicMasker` (same seed, epoch, example_id → same mask).

    Args:
        masker: the reference `Masker` (`reference_masker_for_records`).
        max_seq_length: L, the padded row length.
    """

    def __init__(self, masker, max_seq_length):
        if int(max_seq_length) < 3:
            raise InputError(f"max_seq_length must be >= 3, got {max_seq_length}")
        self.reference = masker
        self.config = masker.config
        self.max_seq_length = int(max_seq_length)
        self.layout = DrawLayout.for_config(masker.config, self.max_seq_length)

    def mask_batch(self, input_ids, lengths, example_ids, seed, epoch):
        """`input_ids` [B, L] (any int dtype, padded), `lengths` [B], `example_ids` [B]; one
        `epoch` for the batch or one per row. Returns the `features.py` batch dict."""
        ids = np.asarray(input_ids)
        lengths = np.asarray(lengths, np.int64)
        B, L, P = ids.shape[0], self.max_seq_length, self.layout.predictions
        if ids.ndim != 2 or ids.shape[1] != L:
            raise InputError(f"input_ids must be [batch, {L}], got shape {ids.shape}")
        epochs = np.broadcast_to(np.asarray(epoch, np.int64), (B,))
        draws = {}
        for e in np.unique(epochs).tolist():
            rows = np.nonzero(epochs == e)[0]
            part = masking_draws_for(self.layout, seed, e, np.asarray(example_ids)[rows])
            for name, value in part.items():
                draws.setdefault(name, np.zeros((B, value.shape[1]), np.int64))[rows] = value
        per_row = [{name: value[i] for name, value in draws.items()} for i in range(B)]
        blocks = [ids[i, :lengths[i]].astype(np.int32) for i in range(B)]
        masked = mask_with_draws(self.reference, blocks, per_row)
        out = {"input_ids": np.zeros((B, L), np.int32),
               "input_mask": (np.arange(L)[None, :] < lengths[:, None]).astype(np.int32),
               "segment_ids": np.zeros((B, L), np.int32)}
        out["input_ids"][out["input_mask"] == 1] = masked.input_ids
        n = masked.num_masked
        slot = np.arange(P)[None, :] < n[:, None]
        for name, attr in _SLOT_FIELDS:
            out[name] = np.zeros((B, P), np.int32)
            out[name][slot] = getattr(masked, attr)
        out["masked_lm_weights"] = slot.astype(np.float32)
        out["sbo_weights"] = np.zeros((B, P), np.float32)
        out["sbo_weights"][slot] = masked.sbo_weights
        return {name: out[name] for name in features.FEATURE_NAMES}
