"""A vocabulary learned by build_vocab end to end: records written with it, a run whose model
vocab_size follows it (not the --config's 28996), started from an HF folder in the official
SpanBERT with-head layout with that vocabulary (encoder + both heads loaded)."""

import json
import os
import sys

import pytest

from spanbert_tf.data.vocab.build import VocabConfig, build_vocab
from spanbert_tf.data.writing.pipeline import PretrainingDataConfig, create_pretraining_data
from spanbert_tf.tasks.pretraining.run import PretrainingSettings, run_pretraining
from spanbert_tf.tokenization import BertWordpieceTokenizer
from spanbert_tf.training.train_log import read_train_log

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "convert"))
from official_layout import official_tensors, write_official_folder  # noqa: E402

TEXT = ["北京是中国的首都。上海是中国最大的城市。",
        "Le café de la gare est fermé le dimanche, mais l'école reste ouverte.",
        "Über die Brücke gehen täglich viele Menschen zur Arbeit."]


@pytest.fixture(scope="module")
def new_vocab_records(tmp_path_factory, wikitext_corpus):
    tmp = tmp_path_factory.mktemp("newvocab")
    corpus = tmp / "corpus.txt"
    with open(wikitext_corpus, encoding="utf-8") as f:
        wiki = f.readlines()[:20]
    corpus.write_text("".join(wiki) + "\n" + "\n".join(TEXT * 10) + "\n", encoding="utf-8")
    vocab = tmp / "vocab.txt"
    build_vocab(VocabConfig(input_file=str(corpus), output_file=str(vocab), vocab_size=600,
                            progress=False, compare_vocab_file=None))
    records = tmp / "records"
    create_pretraining_data(PretrainingDataConfig(
        input_file=str(corpus), vocab_file=str(vocab), output_dir=str(records),
        max_seq_length=64, max_predictions_per_seq=10, dupe_factor=1, num_shards=1,
        num_workers=1, progress=False))
    return vocab, records


@pytest.fixture(scope="module")
def new_vocab_run(new_vocab_records, micro_config, tmp_path_factory):
    """One pretraining step on the new-vocab records from an official-layout HF folder."""
    import contextlib
    import io

    vocab, records = new_vocab_records
    size = BertWordpieceTokenizer(str(vocab)).vocab_size
    micro = json.load(open(micro_config))["model"]
    tmp = tmp_path_factory.mktemp("run")
    folder = write_official_folder(
        str(tmp / "hf"), official_tensors(size, micro["hidden_size"], micro["num_layers"],
                                          width=micro["sbo_position_embedding_size"],
                                          intermediate=micro["intermediate_size"]),
        str(vocab))
    model_dir = tmp / "run"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_pretraining(PretrainingSettings(
            config=micro_config, input_files=str(records), model_dir=str(model_dir),
            num_train_steps=1, log_every=1, show_progress=False, init_checkpoint=folder))
    return size, micro, model_dir, out.getvalue()


def test_records_and_model_follow_the_new_vocab(new_vocab_records, new_vocab_run):
    vocab, records = new_vocab_records
    size, micro, model_dir, out = new_vocab_run
    meta = json.load(open(records / "metadata.json"))
    assert meta["vocab"]["size"] == size < 600
    assert f"vocab_size {size} from the data's vocabulary" in out
    assert "MLM head (cls.predictions.*), SBO head (cls.pair_target_predictions.*, " \
           f"max_targets 15 x {micro['sbo_position_embedding_size']})" in out
    log = read_train_log(str(model_dir))
    assert log[-1]["step"] == 1 and log[-1]["sbo_loss"] > 0
    saved = json.load(open(model_dir / "config.json"))
    assert saved["model"]["vocab_size"] == size
    assert open(model_dir / "vocab.txt", encoding="utf-8").read() == vocab.read_text(encoding="utf-8")


@pytest.mark.benchmark
def test_export_and_span_fill_with_the_new_vocab(new_vocab_run, tmp_path):
    import subprocess

    from spanbert_tf.tasks.pretraining.export import export_saved_models

    size, _, model_dir, _ = new_vocab_run
    export_dir = tmp_path / "export"
    export_saved_models(str(model_dir), str(export_dir), seq_length=32,
                        exports=("preprocessor", "pretrainer"), top_k=3)
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                          "spanbert_tf", "tasks", "pretraining", "demo_fill_span.py")
    proc = subprocess.run([sys.executable, script, f"--export_dir={export_dir}",
                           "--text=北京是中国的首都。", "--span=中国", "--top_k=3"],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "input   : [CLS] 北 京 是 [MASK] [MASK] 的 首 都 。 [SEP]" in proc.stdout
    assert "span    : 中 国" in proc.stdout and proc.stdout.count("joint best string: ") == 2
