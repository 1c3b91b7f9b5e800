"""serving_ops: a SavedModel's op types against TF Serving's op set (TF core + tensorflow-text 2.12.1)."""

import os

import pytest

from spanbert_tf.serving import ops as serving_ops

tf = pytest.importorskip("tensorflow")
tf_text = pytest.importorskip("tensorflow_text")


def test_tensorflow_text_list_is_the_2_12_1_ops_lib():
    ops = serving_ops.tensorflow_text_serving_ops()
    assert len(ops) == 35
    # The classic BERT tokenization ops the exports use, and the fast ones 2.12.1 already had.
    assert {"WordpieceTokenizeWithOffsets", "RegexSplitWithOffsets", "NormalizeUTF8",
            "CaseFoldUTF8", "FastWordpieceTokenizeWithOffsets", "FastBertNormalize"} <= ops
    # In the 2.12.1 tree but outside ops_lib (trimmer_ops.cc), and newer than 2.12.1.
    assert not {"TFText>RoundRobinTrim", "TFText>RoundRobinGenerateMasks", "TFText>Utf8Binarize"} & ops
    # Every name is an op the installed tensorflow-text (a later version) registers too.
    from tensorflow.python.framework import op_def_registry

    assert [name for name in sorted(ops) if op_def_registry.get(name) is None] == []


def test_core_ops_are_tensorflow_alone():
    core = serving_ops.tensorflow_core_ops()
    assert {"MatMul", "StatefulPartitionedCall", "StringSplitV2", "SaveV2"} <= core
    # This process has tensorflow-text loaded; the core list does not include its ops.
    assert "tensorflow_text" in __import__("sys").modules
    assert not core & serving_ops.tensorflow_text_serving_ops()
    assert "TFText>RoundRobinTrim" not in core


class _Trimming(tf.Module):
    """Uses tensorflow_text.RoundRobinTrimmer (TFText>RoundRobinTrim) inside a nested function."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, text):
        pieces = tf.strings.split(text)
        return {"kept": self._trim(pieces).to_tensor(default_value="")}

    @tf.function
    def _trim(self, pieces):
        return tf_text.RoundRobinTrimmer(max_seq_length=2).trim([pieces])[0]


class _Tokenizing(tf.Module):
    """Classic WordPiece tokenization (in tensorflow-text 2.12.1) and core ops only."""

    def __init__(self, vocab_file):
        super().__init__()
        self.tokenizer = tf_text.BertTokenizer(vocab_file)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, text):
        return {"ids": self.tokenizer.tokenize(text).merge_dims(-2, -1).to_tensor()}


def test_export_with_a_model_server_op_passes(tmp_path, cased_vocab):
    module = _Tokenizing(cased_vocab)
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    ops = serving_ops.saved_model_op_types(str(tmp_path))
    assert "WordpieceTokenizeWithOffsets" in ops and "StatefulPartitionedCall" in ops
    assert serving_ops.ops_outside_model_server(str(tmp_path)) == []
    serving_ops.check_serving_ops(str(tmp_path))


def test_op_outside_the_model_server_fails_with_its_name(tmp_path):
    module = _Trimming()
    assert module.serve(tf.constant(["a b c"]))["kept"].numpy().tolist() == [[b"a", b"b"]]
    tf.saved_model.save(module, str(tmp_path), signatures={"serving_default": module.serve})
    # Found in the function library (the trimmer runs in a nested function).
    assert serving_ops.ops_outside_model_server(str(tmp_path)) == ["TFText>RoundRobinTrim"]
    with pytest.raises(serving_ops.UnservableOpsError,
                       match=r"the-trimmer: uses ops that TF Serving's model server does not "
                             r"register \(TensorFlow core \+ tensorflow-text 2\.12\.1.*\): "
                             r"TFText>RoundRobinTrim\."):
        serving_ops.check_serving_ops(str(tmp_path), name="the-trimmer")


def test_unservable_export_is_never_published(tmp_path):
    from spanbert_tf.tasks.pretraining.export import _save_atomically

    module = _Trimming()
    with pytest.raises(serving_ops.UnservableOpsError, match="TFText>RoundRobinTrim"):
        _save_atomically(module, {"serving_default": module.serve.get_concrete_function()},
                         tmp_path / "trimmer", 1, overwrite=False)
    assert os.listdir(tmp_path / "trimmer") == []  # neither 1/ nor a temp dir


def test_not_a_saved_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="no saved_model.pb"):
        serving_ops.saved_model_op_types(str(tmp_path))
