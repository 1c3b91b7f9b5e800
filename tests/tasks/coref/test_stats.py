"""Counts of all of LitBank before and after the minimize step (the figures in the README)."""

from spanbert_tf.tasks.coref import conll, stats
from spanbert_tf.tokenization import BertWordpieceTokenizer


def test_litbank_counts(shared_data, cased_vocab, capsys):
    docs = conll.read_conll_files(str(shared_data / "coref" / "litbank" / "conll"))
    counts = stats.corpus_stats(docs, BertWordpieceTokenizer(cased_vocab), 384)
    assert counts == {
        "documents": 100, "words": 210532, "sentences": 8562, "mentions": 29103,
        "entities": 7927, "singleton_entities": 5763, "wordpieces": 239825, "segments": 714,
        "unk_words": 0, "mentions_wider_than_30": 88, "mentions_across_sentences": 0,
        "mentions_across_segments": 0, "max_segment_len": 384}
    # The module's command line prints the same counts for a split.
    folder = shared_data / "coref" / "litbank"
    stats.main([f"--conll={folder / 'conll'}", f"--split_file={folder / 'splits' / 'dev.txt'}",
                f"--vocab_file={cased_vocab}"])
    printed = capsys.readouterr().out
    assert '"documents": 10,' in printed and '"max_segment_len": 384' in printed
