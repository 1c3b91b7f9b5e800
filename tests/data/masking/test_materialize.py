"""materialize_masks writes exactly the masks the training pipeline uses in an epoch."""

import json

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.data import features
from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.writing import pipeline
from spanbert_tf.data.masking.dynamic_masking import masker_for_records
from spanbert_tf.data.masking.masking_types import MaskingConfig
from spanbert_tf.data.masking.materialize import materialize_masks

L, P = 32, 6


def _original(ex):
    ids = ex["input_ids"].copy()
    k = int(ex["masked_lm_weights"].sum())
    ids[ex["masked_lm_positions"][:k]] = ex["masked_lm_ids"][:k]
    return ids.astype(np.int64).tobytes()


def test_materialized_epoch_equals_the_training_stream(tmp_path, shared_data, cased_vocab):
    unmasked = tmp_path / "unmasked"
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        input_file=str(shared_data / "corpus" / "bert_sample_text.txt"),
        output_dir=str(unmasked), masking="none",
        max_seq_length=L, num_shards=2, num_workers=1, progress=False))
    config = MaskingConfig(max_predictions_per_seq=P, scheme="span", replacement="token")
    stats = materialize_masks(str(unmasked), str(tmp_path / "out"), epoch=1, seed=7,
                              config=config, progress=False)
    files, meta = input_pipeline.find_pretraining_files(str(tmp_path / "out"))
    input_pipeline.check_metadata(meta)  # the offline feature spec
    assert meta["records"] == "masked" and meta["settings"]["epoch"] == 1
    spec = features.pretraining_feature_spec(L, P)
    written = {}
    for path in files:
        for record in tf.data.TFRecordDataset(path):
            ex = {k: v.numpy() for k, v in tf.io.parse_single_example(record, spec).items()}
            written.setdefault(_original(ex), []).append(ex)
    assert sum(map(len, written.values())) == stats["instances"] == meta["counts"]["instances"]
    assert 0.14 < stats["masked_fraction"] < 0.18
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["span_length_words_histogram"] == stats["span_length_words_histogram"]

    # The training pipeline (seed 7) in epoch 1: the same masks for the same blocks.
    train_files, train_meta = input_pipeline.find_pretraining_files(str(unmasked))
    masker = masker_for_records(train_meta, config, cased_vocab)
    fn = input_pipeline.make_pretraining_dataset_fn(train_files, train_meta, 10, seed=7,
                                                    masker=masker)
    per_epoch = input_pipeline.records_per_pipeline(train_files, train_meta,
                                                    tf.distribute.InputContext())
    ds = input_pipeline.pretraining_dataset(
        train_files, L, P, 10, seed=7, masker=masker, start_example=per_epoch,
        records_per_epoch=per_epoch, compression=fn.compression)
    seen = 0
    assert per_epoch == stats["instances"] >= 40
    examples = [{k: v[i] for k, v in batch.items()}
                for batch in ({k: v.numpy() for k, v in b.items()} for b in ds.take(4))
                for i in range(10)]
    for ex in examples:  # all in epoch 1
            if len(written[_original(ex)]) > 1:  # a block that occurs twice in the corpus
                continue
            want = written[_original(ex)][0]
            for name in features.FEATURE_NAMES:
                np.testing.assert_array_equal(ex[name], want[name], err_msg=name)
            seen += 1
    assert seen >= 35


@pytest.mark.slow
def test_cli_writes_shards_and_errors_name_the_file(tmp_path, shared_data):
    import os
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    common = dict(input_file=str(shared_data / "corpus" / "bert_sample_text.txt"),
                  max_seq_length=L, max_predictions_per_seq=P, dupe_factor=1, num_shards=1,
                  num_workers=1, progress=False)
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        output_dir=str(tmp_path / "none"), masking="none", **common))
    pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
        output_dir=str(tmp_path / "span"), **common))
    env = dict(os.environ, PYTHONPATH=repo, TF_CPP_MIN_LOG_LEVEL="3")

    def cli(source, out):
        return subprocess.run(
            [sys.executable, os.path.join(repo, "materialize_masks.py"),
             f"--input_files={tmp_path / source}", f"--output_dir={tmp_path / out}",
             "--epoch=2", f"--max_predictions_per_seq={P}", "--noprogress"],
            env=env, capture_output=True, text=True, timeout=300)

    ok = cli("none", "epoch2")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "materialize_masks: epoch 2" in ok.stdout
    assert (tmp_path / "epoch2" / "pretrain-00000-of-00001.tfrecord").stat().st_size > 0
    bad = cli("span", "x")
    assert bad.returncode != 0
    assert f"{tmp_path / 'span' / 'metadata.json'}: the records are already masked" in bad.stderr
