"""run_pretraining with dynamic masking (records from create_pretraining_data --masking=none),
and a resumed run that continues the data stream instead of replaying it."""

import numpy as np
import pytest
import tensorflow as tf

from spanbert_tf.data.input import input_pipeline
from spanbert_tf.data.writing import pipeline
from spanbert_tf.data.input.input_pipeline import InputError
from spanbert_tf.tasks.pretraining.run import PretrainingSettings, run_pretraining


@pytest.fixture(scope="module")
def records(tmp_path_factory, wikitext_corpus):
    out = tmp_path_factory.mktemp("data")
    for masking in ("none", "span"):
        pipeline.create_pretraining_data(pipeline.PretrainingDataConfig(
            input_file=wikitext_corpus, output_dir=str(out / masking), masking=masking,
            max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1, num_shards=2,
            num_workers=1, progress=False))
    return out


def _params(records, model_dir, config, **kw):
    return PretrainingSettings(config=config, input_files=str(records), model_dir=str(model_dir),
                             show_progress=False, log_every=1, steps_per_loop=2,
                             max_predictions_per_seq=10, **kw)


def test_flags_and_records_that_disagree_name_the_file(records, micro_config, tmp_path):
    with pytest.raises(InputError, match=r"none/metadata.json: the records are unmasked"):
        run_pretraining(_params(records / "none", tmp_path / "a", micro_config,
                                dynamic_masking=False))
    with pytest.raises(InputError, match=r"span/metadata.json: --dynamic_masking needs"):
        run_pretraining(_params(records / "span", tmp_path / "b", micro_config,
                                dynamic_masking=True))
    with pytest.raises(InputError, match=r"none/metadata.json has no unigram_counts"):
        run_pretraining(_params(records / "none", tmp_path / "c", micro_config,
                                random_token_source="unigram"))


def _batches(dataset_fn, n):
    return [{k: v.numpy() for k, v in b.items()} for b in dataset_fn().take(n)]


@pytest.mark.slow
def test_stopped_and_resumed_run_continues_the_data(records, micro_config, tmp_path,
                                                    monkeypatch):
    """Train 4 steps, stop, resume to 6: the resumed run's input starts at step 5's
    examples of the uninterrupted stream (grad_accum 2: 2 batches per step). Static
    records resume the same way (tests/data/test_input_pipeline_dynamic.py)."""
    kind = "none"
    made = []
    original = input_pipeline.make_pretraining_dataset_fn

    def recording(*args, **kwargs):
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(input_pipeline, "make_pretraining_dataset_fn", recording)
    first = run_pretraining(_params(records / kind, tmp_path, micro_config,
                                    num_train_steps=4, grad_accum_steps=2))
    assert first["dynamic_masking"] is (kind == "none")
    assert np.isfinite(first["loss"])
    summary = run_pretraining(_params(records / kind, tmp_path, micro_config,
                                      num_train_steps=6, grad_accum_steps=2))
    assert summary["step"] == 6
    assert made[1].start_step == 4
    resumed = _batches(made[1], 4)
    made[1].start_step = 0  # the uninterrupted run's stream
    whole = _batches(made[1], 12)[8:]
    for a, b in zip(resumed, whole):
        for name in a:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-6")
