"""stateless_draws.py: TensorFlow's stateless Philox draws of DynamicMasker.draw, in numpy."""

import numpy as np
import tensorflow as tf

from spanbert_tf.data.masking import stateless_draws
from spanbert_tf.data.masking.dynamic_masking import DynamicMasker
from spanbert_tf.data.masking.masking_draws import DrawLayout
from spanbert_tf.data.masking.masking_types import MaskingConfig


def test_uniform_and_fold_in_equal_tensorflow():
    for seed in ([7, 0x5BE27], [-3, 2**62 + 5], [0, 0]):
        got = stateless_draws.uniform_uint32(np.int64(seed[0]), np.int64(seed[1]), 13)
        want = tf.random.stateless_uniform([13], tf.constant(seed, tf.int64), minval=None,
                                           maxval=None, dtype=tf.uint32).numpy()
        np.testing.assert_array_equal(got, want.astype(np.int64))
        for data in (0, 3, 2**40 + 1, -1):
            folded = tf.random.experimental.stateless_fold_in(
                tf.constant(seed, tf.int64), tf.constant(data, tf.int64)).numpy()
            assert list(map(int, stateless_draws.fold_in(seed[0], seed[1], data))) == \
                folded.tolist()


def test_masking_draws_equal_dynamic_masker_draw():
    for config in (MaskingConfig(max_predictions_per_seq=20),
                   MaskingConfig(scheme="whole_word", max_predictions_per_seq=5)):
        layout = DrawLayout.for_config(config, 64)
        ids = np.array([0, 5, (3 << 24) + 7, 2**40 + 1])
        masker = type("M", (), {"layout": layout})()
        for seed, epoch in ((12345, 0), (7, 3)):
            got = stateless_draws.masking_draws_for(layout, seed, epoch, ids)
            for row, example_id in enumerate(ids.tolist()):
                want = DynamicMasker.draw(masker, seed, epoch, example_id)
                for name, value in want.items():
                    np.testing.assert_array_equal(got[name][row], value.numpy(), err_msg=name)
