"""The data types of masking (§3.1): `MaskingConfig`, `MaskedInstance`, `MaskedBatch`.

Kept apart from `masking.py` (which re-exports them) so that the masking module
holds the algorithm itself. Invalid `MaskingConfig` values raise `ValueError`
naming the create_pretraining_data.py flag that sets the field (`--masked_lm_prob`).

Example:
```python
config = MaskingConfig(scheme="span", geometric_p=0.2, max_span_length=10)
config.span_length_distribution()  # P(1 word), ..., P(10 words)
batch = masker.mask_many([(blocks, rng)])   # a MaskedBatch
batch.instance(0)                           # its first MaskedInstance
```
"""

import dataclasses
import math
import numbers

import numpy as np

from spanbert_tf.errors import InputError

SCHEMES = ("span", "whole_word", "token")
REPLACEMENTS = ("span", "token")


# Fields are named in messages by the create_pretraining_data.py flag that sets them.
_FLAG_OF_FIELD = {"scheme": "masking"}


def _flag(name):
    return f"--{_FLAG_OF_FIELD.get(name, name)}"


def _check_range(name, value, low, high, low_open=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{_flag(name)} must be a number, got {value!r}")
    if math.isnan(value) or value > high or value < low or (low_open and value == low):
        interval = f"{'(' if low_open else '['}{low}, {high}]"
        raise InputError(f"{_flag(name)} must be in {interval}, got {value!r}")


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{_flag(name)} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"{_flag(name)} must be >= {minimum}, got {value!r}")


@dataclasses.dataclass
class MaskingConfig:
    """Masking settings; invalid values raise `ValueError` naming the field.

    Example:
    ```python
    config = MaskingConfig(scheme="span", geometric_p=0.2, max_span_length=10)
    config.span_length_distribution()  # P(1 word), ..., P(10 words)
    ```
    """

    scheme: str = "span"
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 80
    geometric_p: float = 0.2
    max_span_length: int = 10
    replacement: str = "span"
    max_pair_targets: int = 15
    mask_prob: float = 0.8
    random_prob: float = 0.1

    def __post_init__(self):
        self.validate()

    @classmethod
    def from_flags(cls, settings):
        """The config of a program's settings whose fields carry the flags' names
        (`masking` for `scheme`): `PretrainingDataConfig`, `PretrainingSettings`."""
        names = [f.name for f in dataclasses.fields(cls) if f.name != "scheme"]
        return cls(scheme=settings.masking, **{n: getattr(settings, n) for n in names})

    def validate(self):
        for name, allowed in (("scheme", SCHEMES), ("replacement", REPLACEMENTS)):
            if getattr(self, name) not in allowed:
                raise InputError(
                    f"{_flag(name)} must be one of {allowed}, got {getattr(self, name)!r}"
                )
        _check_range("masked_lm_prob", self.masked_lm_prob, 0.0, 1.0, low_open=True)
        _check_range("geometric_p", self.geometric_p, 0.0, 1.0, low_open=True)
        _check_range("mask_prob", self.mask_prob, 0.0, 1.0)
        _check_range("random_prob", self.random_prob, 0.0, 1.0)
        if self.mask_prob + self.random_prob > 1.0 + 1e-9:
            raise InputError(
                "--mask_prob + --random_prob must be <= 1, got "
                f"{self.mask_prob} + {self.random_prob}"
            )
        _check_int("max_predictions_per_seq", self.max_predictions_per_seq, 1)
        _check_int("max_span_length", self.max_span_length, 1)
        _check_int("max_pair_targets", self.max_pair_targets, 1)

    def span_length_distribution(self):
        """Probabilities of span lengths 1..max_span_length words (float64)."""
        lengths = np.arange(self.max_span_length, dtype=np.float64)
        pmf = self.geometric_p * (1.0 - self.geometric_p) ** lengths
        return pmf / pmf.sum()


@dataclasses.dataclass
class MaskedInstance:
    """One masked `[CLS] block [SEP]` instance (positions include `[CLS]`).

    `input_ids` is the masked copy; the per-prediction arrays have length
    m <= max_predictions_per_seq, sorted by `masked_positions`.
    `span_lengths_*` describe the merged spans (maximal runs of masked
    wordpieces, in order). `drawn_span_words` (span scheme only) holds the
    sampled length of every accepted span, and `unmerged_spans` its
    `(first, last)` wordpiece positions before merging, as the official code
    records them; both are for statistics and tests.
    """

    input_ids: np.ndarray
    masked_positions: np.ndarray
    masked_ids: np.ndarray
    span_left_positions: np.ndarray
    span_right_positions: np.ndarray
    span_relative_positions: np.ndarray
    sbo_weights: np.ndarray
    span_lengths_words: list
    span_lengths_pieces: list
    replacement_counts: dict
    drawn_span_words: list = dataclasses.field(default_factory=list)
    unmerged_spans: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class MaskedBatch:
    """Many masked instances, each field's rows concatenated in instance order.

    `input_ids` holds the masked instances end to end (`input_lengths` each);
    the per-prediction fields hold `num_masked[i]` entries per instance, the
    span fields `num_spans[i]`; `replacement_counts` is `[N, 3]`
    (mask, random, unchanged). `instance(i)` gives one `MaskedInstance`.
    """

    input_ids: np.ndarray
    input_lengths: np.ndarray
    masked_positions: np.ndarray
    masked_ids: np.ndarray
    span_left_positions: np.ndarray
    span_right_positions: np.ndarray
    span_relative_positions: np.ndarray
    sbo_weights: np.ndarray
    num_masked: np.ndarray
    span_lengths_words: np.ndarray
    span_lengths_pieces: np.ndarray
    num_spans: np.ndarray
    replacement_counts: np.ndarray
    drawn_span_words: list
    unmerged_spans: list

    def __len__(self):
        return self.input_lengths.size

    def instance(self, i):
        """Instance `i` as a `MaskedInstance`."""
        def row(lengths):
            ends = np.cumsum(lengths)
            return slice(int(ends[i] - lengths[i]), int(ends[i]))

        ids, pred, span = row(self.input_lengths), row(self.num_masked), row(self.num_spans)
        mask, random, unchanged = self.replacement_counts[i].tolist()
        return MaskedInstance(
            self.input_ids[ids], self.masked_positions[pred], self.masked_ids[pred],
            self.span_left_positions[pred], self.span_right_positions[pred],
            self.span_relative_positions[pred], self.sbo_weights[pred],
            self.span_lengths_words[span].tolist(), self.span_lengths_pieces[span].tolist(),
            {"mask": mask, "random": random, "unchanged": unchanged},
            self.drawn_span_words[i], self.unmerged_spans[i])
