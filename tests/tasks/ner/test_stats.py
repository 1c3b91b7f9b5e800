"""Counts of all of LitBank entities (the figures of docs/ner.md)."""

from spanbert_tf.tasks.ner import formats, stats
from spanbert_tf.tokenization import BertWordpieceTokenizer


def test_litbank_counts(shared_data, cased_vocab, capsys):
    folder = shared_data / "ner" / "litbank"
    docs = formats.read_ner_files(str(folder / "tsv"))
    counts = stats.corpus_stats(docs, BertWordpieceTokenizer(cased_vocab), 8)
    assert counts == {
        "documents": 100, "sentences": 8562, "words": 210532, "entities": 13912,
        "entities_wider_than_8_words": 695,
        "entities_per_type": {"FAC": 2154, "GPE": 878, "LOC": 1170, "ORG": 130, "PER": 9383,
                              "VEH": 197},
        "entities_per_depth": {"1": 11989, "2": 1742, "3": 162, "4": 19},
        "wordpiece_width_mean": 3.751, "wordpiece_width_max": 155,
        "wordpiece_widths": {"1": 2840, "2-3": 6801, "4-7": 3082, "8-15": 858, "16+": 331},
        "max_span_width": 8}
    stats.main([f"--data={folder / 'tsv'}", f"--split_file={folder / 'splits' / 'dev.txt'}",
                f"--vocab_file={cased_vocab}"])
    printed = capsys.readouterr().out
    assert '"documents": 10,' in printed and '"max_span_width": 8' in printed
