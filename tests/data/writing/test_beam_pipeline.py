"""The Beam pipeline writes the local run's records, shards, stats and metadata."""

import gzip
import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("apache_beam")  # the [beam] extra (part of the [test] extra)

from spanbert_tf import errors  # noqa: E402
from spanbert_tf.data.writing import beam_pipeline, pipeline  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _records(output_dir, name):
    """The records of a shard (decompressed), framing checked, as a list of bytes."""
    path = os.path.join(output_dir, name)
    data = gzip.open(path).read() if name.endswith(".gz") else open(path, "rb").read()
    records, i = [], 0
    while i < len(data):
        n = int.from_bytes(data[i:i + 8], "little")
        records.append(data[i + 12:i + 12 + n])
        i += 12 + n + 4
    assert i == len(data)
    return records


def _run_both(make_config, tmp_path, **kwargs):
    local_dir, beam_dir = str(tmp_path / "local"), str(tmp_path / "beam")
    local = pipeline.create_pretraining_data(make_config(output_dir=local_dir, **kwargs))
    beam = beam_pipeline.create_pretraining_data_beam(make_config(output_dir=beam_dir, **kwargs))
    return local_dir, local, beam_dir, beam


def _assert_same_output(local_dir, local, beam_dir, beam):
    assert local["instances"] > 0
    without_timing = lambda s: {k: v for k, v in s.items() if k != "timing"}  # noqa: E731
    assert without_timing(beam) == without_timing(local)
    saved = json.load(open(os.path.join(beam_dir, "stats.json")))
    assert without_timing(saved) == without_timing(beam)
    meta = [json.load(open(os.path.join(d, "metadata.json"))) for d in (local_dir, beam_dir)]
    for m in meta:
        del m["settings"]["output_dir"]
    if meta[0]["compression"] == "GZIP":  # the compressed bytes may differ; records may not
        for m in meta:
            for entry in m["shard_files"]:
                del entry["bytes"], entry["sha256"]
    assert meta[1] == meta[0]
    names = meta[0]["shards"]
    assert sorted(n for n in os.listdir(beam_dir) if n.startswith("pretrain-")) == names
    assert not [n for n in os.listdir(beam_dir) if n.startswith(".")]  # no temporary left
    for name in names:
        assert _records(beam_dir, name) == _records(local_dir, name), name


def test_span_masking_on_the_embedded_corpus_matches_the_local_run(tmp_path, wikitext_corpus,
                                                                  small_data_config):
    saved = pipeline.WORK_UNIT_BYTES
    pipeline.WORK_UNIT_BYTES = 40_000  # several work units per file: ordering across them
    try:
        out = _run_both(small_data_config, tmp_path, input_file=wikitext_corpus, compression="GZIP")
    finally:
        pipeline.WORK_UNIT_BYTES = saved
    _assert_same_output(*out)
    assert out[1]["documents"] == 62 and out[1]["instances"] > 1000


@pytest.mark.parametrize("kwargs", [
    dict(masking="whole_word", random_token_source="unigram"),
    dict(masking="token", num_shards=4),
    dict(masking="none", random_token_source="unigram"),
], ids=["whole_word-unigram", "token", "none"])
def test_multi_file_input_with_bad_files_matches_the_local_run(tmp_path, multi_file_input,
                                                               kwargs, small_data_config):
    out = _run_both(small_data_config, tmp_path, input_file=multi_file_input, **kwargs)
    _assert_same_output(*out)
    stats = out[3]
    assert stats["skipped"] == {"binary_file": 1, "empty_file": 1}
    assert stats["input_files"] == 3 and stats["documents"] > 3


def test_missing_vocab_is_one_error_before_the_pipeline(tmp_path, wikitext_corpus,
                                                      small_data_config):
    config = small_data_config(input_file=wikitext_corpus, output_dir=str(tmp_path / "out"),
                     vocab_file=str(tmp_path / "no_vocab.txt"))
    with pytest.raises(FileNotFoundError, match="vocab file not found"):
        beam_pipeline.create_pretraining_data_beam(config)
    assert not (tmp_path / "out").exists()


def test_pipeline_options_pin_the_fn_api_runner_unless_a_runner_is_given():
    from apache_beam.options.pipeline_options import DirectOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    options, runner = beam_pipeline.pipeline_options(
        ["direct_num_workers=2", "--direct_running_mode=multi_processing"])
    assert isinstance(runner, FnApiRunner)
    assert options.view_as(DirectOptions).direct_num_workers == 2
    assert options.view_as(DirectOptions).direct_running_mode == "multi_processing"
    assert beam_pipeline.pipeline_options(["--runner=DataflowRunner"])[1] is None


def test_without_beam_the_program_says_how_to_install_it(tmp_path):
    code = ("import sys; sys.modules['apache_beam'] = None; import create_pretraining_data as p;"
            f" sys.argv = ['create_pretraining_data.py', '--runner=beam',"
            f" '--output_dir={tmp_path}']; p.run()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"create_pretraining_data.py: error: {beam_pipeline.INSTALL_HINT}"]
    assert isinstance(errors.InputError(beam_pipeline.INSTALL_HINT), ValueError)
