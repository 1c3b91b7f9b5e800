"""`SpanBertTokenClassifier`: fit on (words, tags) of real LitBank sentences, save as a preset,
`Task.from_preset` gives ours back with the same predictions."""

import numpy as np
import pytest

import keras
import keras_hub
import tensorflow as tf

from spanbert_tf.hub import SpanBertTokenClassifier, SpanBertTokenClassifierPreprocessor
from spanbert_tf.modeling.backbone import build_backbone
from spanbert_tf.modeling.config import ModelConfig
from spanbert_tf.presets.tokenizer import SpanBertTokenizer
from spanbert_tf.tasks.ner import formats
from spanbert_tf.tasks.ner.features import tag_names
from spanbert_tf.tasks.ner.schemes import entities_to_tags, outermost


@pytest.fixture(scope="module")
def sentences(shared_data):
    doc = formats.read_ner_files(
        str(shared_data / "ner" / "litbank" / "tsv" / "1342_pride_and_prejudice_brat.tsv"))[0]
    tags = tag_names(["FAC", "GPE", "LOC", "PER", "VEH", "ORG"])
    pairs = [(w, [tags.index(t) for t in entities_to_tags(outermost(e)[0], len(w))])
             for w, e in zip(doc.sentences, doc.entities) if 3 <= len(w) <= 20][:16]
    return [p[0] for p in pairs], [p[1] for p in pairs], len(tags)


def test_preprocessor_labels_first_pieces_and_unk_words(cased_vocab):
    tokenizer = SpanBertTokenizer(vocabulary=cased_vocab, lowercase=False)
    pre = SpanBertTokenClassifierPreprocessor(tokenizer, sequence_length=8)
    words = tf.ragged.constant([["Knightley", "smiled", "\u200b"], ["Emma"]])
    x, y, w = pre(words, tf.ragged.constant([[1, 0, 0], [2]]))
    ids = np.asarray(x["token_ids"])
    y, w = np.asarray(y), np.asarray(w)
    pieces = [len(tokenizer(t)) for t in ("Knightley", "smiled")]
    first = pre.word_first_pieces(words)
    assert first == [[1, 1 + pieces[0], 1 + sum(pieces)], [1]]
    assert ids[0, first[0][2]] == tokenizer.token_to_id("[UNK]")   # no piece: one [UNK]
    assert ids[0, 0] == tokenizer.token_to_id("[CLS]")
    assert y[0].tolist()[:first[0][2] + 1] == [0, 1] + [0] * (first[0][2] - 1)
    assert w[0].tolist() == [0, 1] + [0] * (pieces[0] - 1) + [1] + [0] * (
        pieces[1] - 1) + [1] + [0] * (8 - 2 - sum(pieces))
    assert y[1, 1] == 2 and w[1].sum() == 1


def test_fit_on_words_and_tags_and_preset_round_trip(tmp_path, cased_vocab, sentences):
    words, tags, num_tags = sentences
    keras.utils.set_random_seed(2)
    backbone = build_backbone(ModelConfig(hidden_size=32, num_layers=2, num_heads=2,
                                          intermediate_size=64, max_position_embeddings=64))
    tokenizer = SpanBertTokenizer(vocabulary=cased_vocab, lowercase=False)
    tagger = SpanBertTokenClassifier(
        backbone, num_tags, preprocessor=SpanBertTokenClassifierPreprocessor(tokenizer, 64),
        dropout=0.0)
    tagger.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False)
    x, y = tf.ragged.constant(words), tf.ragged.constant(tags)
    history = tagger.fit(x=x, y=y, batch_size=8, epochs=6, verbose=0).history["loss"]
    assert history[-1] < 0.6 * history[0], history
    before = tagger.predict(x, verbose=0)
    tagger.save_to_preset(str(tmp_path / "preset"))
    loaded = SpanBertTokenClassifier.from_preset(str(tmp_path / "preset"))
    assert type(loaded) is SpanBertTokenClassifier
    assert type(loaded.preprocessor) is SpanBertTokenClassifierPreprocessor
    np.testing.assert_allclose(loaded.predict(x, verbose=0), before, atol=1e-5)
