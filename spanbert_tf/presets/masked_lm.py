"""`SpanBertMaskedLM` (+ preprocessor): SpanBERT pretraining (MLM + SBO) as a keras-hub Task.

keras-hub's `MaskedLMPreprocessor` masks independent tokens. Ours (a subclass,
so `keras_hub.models.MaskedLMPreprocessor.from_preset` finds it) applies
SpanBERT's span masking (§3.1: geometric span lengths in whole words, 15%
budget, 80/10/10 replacement per span; `spanbert_tf.data.masking.Masker`, the
algorithm `create_pretraining_data.py` uses) to raw strings and produces the
SBO targets (§3.2). Masking is pure TensorFlow (`spanbert_tf.data.masking.dynamic_masking.
DynamicMasker`, equal to the numpy `Masker` fed the same draws), so the
preprocessor runs in graph / `tf.data` / TPU input pipelines. The draws of row
r of the n-th call are keyed by (seed, n, r) (stateless random ops), so a
sequence of calls is reproducible given `seed`; every call masks anew. (Under a
parallel `tf.data` map, which batch gets which call number is up to tf.data.)

One string → `[CLS] wordpieces [SEP]` (cut to `sequence_length`), segment 0.
Outputs `(x, y, sample_weight)`:
- x: `token_ids` (masked), `segment_ids`, `padding_mask`, `mask_positions`,
  `span_left_positions`, `span_right_positions`, `span_relative_positions`
  (`[B, L]` and `[B, P]`, P = `max_predictions_per_seq`);
- y: `{"mlm": ids, "sbo": ids}` (the original tokens at the masked slots);
- sample_weight: `{"mlm": 1 per real slot, "sbo": the masker's SBO weights}`.

`SpanBertMaskedLM` is `SpanBertPretrainer`'s model (same MLM and SBO heads,
tied to the token embedding) with outputs `{"mlm": logits, "sbo": logits}`;
`fit` reports `mlm_loss` and `sbo_loss`, each the weighted mean cross-entropy
over its slots (`reduction="mean_with_sample_weight"`), as `run_pretraining.py`.

Example:
```python
import spanbert_tf.presets
masked_lm = keras_hub.models.MaskedLM.from_preset("presets/spanbert_base")   # SpanBertMaskedLM
masked_lm.preprocessor.sequence_length = 128
masked_lm.fit(tf.data.Dataset.from_tensor_slices(lines).batch(8), epochs=1)
```
"""

import re

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

import keras
import keras_hub
import numpy as np
import tensorflow as tf

from spanbert_tf.data.masking.dynamic_masking import DynamicMasker
from spanbert_tf.data.masking.masker import MaskingConfig
from spanbert_tf.errors import InputError
from spanbert_tf.modeling.backbone import SpanBertBackbone
from spanbert_tf.modeling.pretrainer import SpanBertPretrainer
from spanbert_tf.presets.registration import register, relabel_preset_files
from spanbert_tf.presets.tokenizer import SpanBertTokenizer

MLM = "mlm"
SBO = "sbo"
_UNUSED = re.compile(r"^\[unused\d+\]$")
_SLOT_INPUTS = ("mask_positions", "span_left_positions", "span_right_positions",
                "span_relative_positions")


@register
class SpanBertMaskedLMPreprocessor(keras_hub.models.MaskedLMPreprocessor):
    """Raw strings → span-masked SpanBERT pretraining inputs with MLM and SBO targets.

    Args:
        tokenizer: a `SpanBertTokenizer`.
        sequence_length: int, packed length with `[CLS]`/`[SEP]` (512).
        masked_lm_prob, max_predictions_per_seq, geometric_p, max_span_length,
        max_pair_targets, mask_prob, random_prob: the `MaskingConfig` of
            `create_pretraining_data.py` (defaults: SpanBERT's 0.15, 80, 0.2,
            10, 15, 0.8, 0.1).
        seed: int or None (a random one), keys the masking draws.
    """

    backbone_cls = SpanBertBackbone
    tokenizer_cls = SpanBertTokenizer

    def __init__(self, tokenizer, sequence_length=512, masked_lm_prob=0.15,
                 max_predictions_per_seq=80, geometric_p=0.2, max_span_length=10,
                 max_pair_targets=15, mask_prob=0.8, random_prob=0.1, seed=None, **kwargs):
        super().__init__(tokenizer, sequence_length=sequence_length,
                         mask_selection_rate=masked_lm_prob,
                         mask_selection_length=max_predictions_per_seq,
                         mask_token_rate=mask_prob, random_token_rate=random_prob, **kwargs)
        self.masking_config = MaskingConfig(
            scheme="span", masked_lm_prob=masked_lm_prob,
            max_predictions_per_seq=max_predictions_per_seq, geometric_p=geometric_p,
            max_span_length=max_span_length, replacement="span",
            max_pair_targets=max_pair_targets, mask_prob=mask_prob, random_prob=random_prob)
        self.seed = seed
        self.draw_seed = int(np.random.SeedSequence(seed).generate_state(1)[0] >> 1)
        # Calls so far: the "epoch" of the draw keys, so every call masks anew.
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False, name="masking_calls")
        self._span_maskers = {}

    def build(self, input_shape):
        # Not MaskedLMPreprocessor.build: its token masker and packer are not used.
        self.built = True

    def span_masker(self):
        """The in-graph `DynamicMasker` for this tokenizer and `sequence_length` (built on first use).

        Its `reference` is the numpy `Masker` of `create_pretraining_data.py`.
        """
        length = int(self.sequence_length)
        if length not in self._span_maskers:
            vocab = self.tokenizer.get_vocabulary()
            special = {self.tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]")}
            candidates = np.array([i for i, t in enumerate(vocab)
                                   if i not in special and not _UNUSED.match(t)], np.int32)
            word_starts = np.array([not t.startswith("##") for t in vocab], bool)
            self._span_maskers[length] = DynamicMasker(
                self.masking_config, length, self.tokenizer.mask_token_id, word_starts, candidates)
        return self._span_maskers[length]

    def draws(self, masker, call, rows):
        """The draws of `rows` examples of call number `call`: keyed (draw_seed, call, row)."""
        return tf.map_fn(lambda row: masker.draw(self.draw_seed, call, row),
                         tf.range(rows, dtype=tf.int64),
                         fn_output_signature={k: tf.int64 for k in masker.layout.sizes()})

    def call(self, x, y=None, sample_weight=None):
        length = int(self.sequence_length)
        masker = self.span_masker()
        with tf.device("cpu"):
            x = tf.convert_to_tensor(x, dtype=tf.string)
            pieces = self.tokenizer(x)
            if not isinstance(pieces, tf.RaggedTensor):  # eager keras-hub tokenizers give lists
                pieces = tf.ragged.constant(pieces, dtype=tf.int32, ragged_rank=1)
            pieces = tf.cast(pieces[:, : length - 2], tf.int32)
            rows = pieces.nrows()
            cls = tf.fill([rows, 1], tf.cast(self.tokenizer.cls_token_id, tf.int32))
            sep = tf.fill([rows, 1], tf.cast(self.tokenizer.sep_token_id, tf.int32))
            blocks = tf.concat([cls, pieces, sep], axis=1)
            input_ids = blocks.to_tensor(default_value=self.tokenizer.pad_token_id,
                                         shape=[None, length])
            padding_mask = tf.sequence_mask(tf.cast(blocks.row_lengths(), tf.int32), length)
            call = self.calls.assign_add(1) - 1
            masked = masker.apply(input_ids, tf.cast(padding_mask, tf.int32),
                                  self.draws(masker, call, tf.cast(rows, tf.int64)))
            features = {
                "token_ids": masked["input_ids"],
                "segment_ids": tf.zeros_like(input_ids),
                "padding_mask": padding_mask,
                "mask_positions": masked["masked_lm_positions"],
                "span_left_positions": masked["span_left_positions"],
                "span_right_positions": masked["span_right_positions"],
                "span_relative_positions": masked["span_relative_positions"],
            }
            ids = masked["masked_lm_ids"]
            return keras.utils.pack_x_y_sample_weight(
                features, {MLM: ids, SBO: ids},
                {MLM: masked["masked_lm_weights"], SBO: masked["sbo_weights"]})

    def get_config(self):
        # Preprocessor's config, not MaskedLMPreprocessor's (whose names differ).
        config = keras_hub.models.Preprocessor.get_config(self)
        c = self.masking_config
        config.update({
            "sequence_length": self.sequence_length, "masked_lm_prob": c.masked_lm_prob,
            "max_predictions_per_seq": c.max_predictions_per_seq, "geometric_p": c.geometric_p,
            "max_span_length": c.max_span_length, "max_pair_targets": c.max_pair_targets,
            "mask_prob": c.mask_prob, "random_prob": c.random_prob, "seed": self.seed,
        })
        return config

    def save_to_preset(self, preset_dir):
        super().save_to_preset(preset_dir)
        relabel_preset_files(preset_dir, SpanBertBackbone)


def pretraining_heads(backbone, max_pair_targets, sbo_position_embedding_size):
    """(MLM head, SBO head) exactly as `SpanBertPretrainer` builds them on `backbone` (tied, built)."""
    pretrainer = SpanBertPretrainer(backbone, max_pair_targets=max_pair_targets,
                                    sbo_position_embedding_size=sbo_position_embedding_size)
    return pretrainer.mlm_head, pretrainer.sbo_head


@register
class SpanBertMaskedLM(keras_hub.models.MaskedLM):
    """SpanBERT's pretraining model (MLM + SBO heads) as a keras-hub Task.

    Args:
        backbone: a `SpanBertBackbone`.
        preprocessor: a `SpanBertMaskedLMPreprocessor` or None.
        max_pair_targets: rows of the SBO relative-position embedding (15).
        sbo_position_embedding_size: its width (200).

    Returns `{"mlm": [B, P, V], "sbo": [B, P, V]}` float32 logits.
    """

    backbone_cls = SpanBertBackbone
    preprocessor_cls = SpanBertMaskedLMPreprocessor

    def __init__(self, backbone, preprocessor=None, max_pair_targets=15,
                 sbo_position_embedding_size=200, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.mlm_head, self.sbo_head = pretraining_heads(
            backbone, max_pair_targets, sbo_position_embedding_size)
        # === Functional model ===
        inputs = dict(backbone.input)
        for name in _SLOT_INPUTS:
            inputs[name] = keras.Input(shape=(None,), dtype="int32", name=name)
        sequence = backbone(backbone.input)["sequence_output"]
        outputs = {
            MLM: self.mlm_head(sequence, inputs["mask_positions"]),
            SBO: self.sbo_head(sequence, inputs["span_left_positions"],
                               inputs["span_right_positions"], inputs["span_relative_positions"]),
        }
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        # === Config ===
        self.max_pair_targets = max_pair_targets
        self.sbo_position_embedding_size = sbo_position_embedding_size

    def compile(self, optimizer="auto", loss="auto", *, weighted_metrics="auto", **kwargs):
        """As `MaskedLM.compile`, with one cross-entropy (and accuracy) per head."""
        if loss == "auto":
            # Σ CE·w / Σ w per batch, as SpanBertPretrainer's loss (not / B·P).
            loss = {name: keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, reduction="mean_with_sample_weight") for name in (MLM, SBO)}
        if weighted_metrics == "auto":
            weighted_metrics = {name: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
                                for name in (MLM, SBO)}
        super().compile(optimizer=optimizer, loss=loss, weighted_metrics=weighted_metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update({"max_pair_targets": self.max_pair_targets,
                       "sbo_position_embedding_size": self.sbo_position_embedding_size})
        return config

    def save_to_preset(self, preset_dir, max_shard_size=10):
        super().save_to_preset(preset_dir, max_shard_size=max_shard_size)
        relabel_preset_files(preset_dir, SpanBertBackbone)


def masked_lm_from_pretrainer(pretrainer, tokenizer, **preprocessor_kwargs):
    """A `SpanBertMaskedLM` on `pretrainer.backbone` with copies of its trained MLM and SBO heads."""
    preprocessor = SpanBertMaskedLMPreprocessor(
        tokenizer, max_pair_targets=pretrainer.max_pair_targets, **preprocessor_kwargs)
    task = SpanBertMaskedLM(pretrainer.backbone, preprocessor=preprocessor,
                            max_pair_targets=pretrainer.max_pair_targets,
                            sbo_position_embedding_size=pretrainer.sbo_position_embedding_size)
    for source, target in ((pretrainer.mlm_head, task.mlm_head), (pretrainer.sbo_head, task.sbo_head)):
        if len(source.weights) != len(target.weights):
            raise InputError(f"{source.name}: {len(source.weights)} weights, expected {len(target.weights)}")
        for a, b in zip(source.weights, target.weights):
            b.assign(a)
    return task
