"""`build_vocab.py`: a BERT WordPiece vocabulary learned from your corpus, and its coverage.

1. one streaming pass counts the words of the training lines (`word_counts`: our tokenizer's
   word split, a bounded word table, a progress bar);
2. tensorflow-text's WordPiece learner (`wordpiece_tokenizer_learner_lib.learn`, the learner
   behind both `tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset` and keras-hub's
   `compute_word_piece_vocabulary`; bench/vocab_learners.py measures the two entry points)
   turns the counts into at most `vocab_size` wordpieces, the reserved tokens first;
3. `vocab.txt` is written atomically, then `<vocab>.coverage.json` (also atomic): unknown-word
   rate and wordpieces per word of the new vocabulary on the held-out lines, beside the same
   figures of a reference vocabulary (default: the BERT cased vocabulary SpanBERT used).

Example:
```python
summary = build_vocab(VocabConfig(input_file="corpus.txt", output_file="vocab.txt",
                                  vocab_size=8000))
print(format_summary(summary))
```
"""

import dataclasses
import os

from spanbert_tf.data.vocab.coverage import format_coverage_table, vocab_coverage
from spanbert_tf.data.vocab.word_counts import count_words, expand_input_files
from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import write_json_atomic, write_text_atomic
from spanbert_tf.tokenization import SPECIAL_TOKENS

DEFAULT_RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
BERT_CASED_VOCAB = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "resources", "bert-base-cased-vocab.txt")


@dataclasses.dataclass
class VocabConfig:
    input_file: str = None
    output_file: str = "vocab.txt"
    vocab_size: int = 30000
    do_lower_case: bool = False
    reserved_tokens: tuple = DEFAULT_RESERVED_TOKENS
    held_out_every: int = 100
    max_unique_words: int = 2_000_000
    max_token_length: int = 50
    max_unique_chars: int = 1000
    compare_vocab_file: str = BERT_CASED_VOCAB
    compare_do_lower_case: bool = False
    report_file: str = None
    max_held_out_lines: int = 20000
    progress: bool = True

    def validate(self):
        problems = []
        if not self.input_file:
            problems.append("--input_file is required")
        if not self.output_file:
            problems.append("--output_file is required")
        reserved = list(self.reserved_tokens)
        missing = [t for t in SPECIAL_TOKENS if t not in reserved]
        if missing:
            problems.append(f"--reserved_tokens must hold {' '.join(SPECIAL_TOKENS)} (the "
                            f"tokenizer needs them); missing {' '.join(missing)}")
        dupes = sorted({t for t in reserved if reserved.count(t) > 1})
        if dupes:
            problems.append(f"--reserved_tokens lists {' '.join(dupes)} twice")
        blank = [t for t in reserved if not t or t != t.strip()]
        if blank:
            problems.append(f"--reserved_tokens: tokens must be non-empty without spaces, got {blank}")
        if self.vocab_size < len(reserved) + 1:
            problems.append(f"--vocab_size {self.vocab_size} leaves no room beside "
                            f"{len(reserved)} reserved tokens")
        if self.held_out_every < 2:
            problems.append(f"--held_out_every must be >= 2 (every N-th line held out), "
                            f"got {self.held_out_every}")
        if problems:
            raise InputError("; ".join(problems))


def learn_wordpieces(word_counts, vocab_size, reserved_tokens, max_token_length=50,
                     max_unique_chars=1000):
    """tensorflow-text's WordPiece learner on (word, count) pairs → the vocabulary list."""
    from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

    if not word_counts:
        raise InputError("the input holds no words to learn a vocabulary from")
    vocab = learner.learn(sorted(word_counts.items()), vocab_size, list(reserved_tokens),
                          max_token_length=max_token_length, max_unique_chars=max_unique_chars,
                          include_joiner_token=True, joiner="##")
    return vocab[:vocab_size]


def build_vocab(config):
    """Counts, learns, writes vocab.txt and the coverage report; returns the summary dict."""
    config.validate()
    files = expand_input_files(config.input_file)
    counts = count_words(files, config.do_lower_case, config.held_out_every,
                         config.max_unique_words, config.progress)
    vocab = learn_wordpieces(counts.words, config.vocab_size, config.reserved_tokens,
                             config.max_token_length, config.max_unique_chars)
    write_text_atomic(config.output_file, "".join(t + "\n" for t in vocab))
    coverage = [("learned", vocab_coverage(files, config.output_file, config.do_lower_case,
                                           config.held_out_every, config.max_held_out_lines))]
    if config.compare_vocab_file:
        coverage.append(("reference", vocab_coverage(
            files, config.compare_vocab_file, config.compare_do_lower_case,
            config.held_out_every, config.max_held_out_lines)))
    summary = {
        "input_files": files,
        "output_file": str(config.output_file),
        "vocab_size": len(vocab),
        "requested_vocab_size": config.vocab_size,
        "do_lower_case": config.do_lower_case,
        "reserved_tokens": list(config.reserved_tokens),
        "held_out_every": config.held_out_every,
        "training_lines": counts.lines,
        "training_words": counts.tokens,
        "unique_words": len(counts.words),
        "pruned_rare_words": counts.pruned_words,
        "learner": "tensorflow_text wordpiece_tokenizer_learner_lib.learn",
        "coverage": {name: stats for name, stats in coverage},
    }
    report = config.report_file or str(config.output_file) + ".coverage.json"
    write_json_atomic(report, summary)
    summary["report_file"] = report
    return summary


def format_summary(summary):
    """The closing lines of build_vocab.py."""
    cov = summary["coverage"]
    rows = [(os.path.basename(s["vocab_file"]) + f" ({name})", s) for name, s in cov.items()]
    lines = [
        f"build_vocab.py: wrote {summary['output_file']} ({summary['vocab_size']} wordpieces, "
        f"asked {summary['requested_vocab_size']}; do_lower_case={summary['do_lower_case']})",
        f"  learned from {summary['training_lines']} lines, {summary['training_words']} words "
        f"({summary['unique_words']} distinct"
        + (f", {summary['pruned_rare_words']} rare ones pruned to bound memory"
           if summary["pruned_rare_words"] else "") + ")",
        f"  coverage on {cov['learned']['lines']} held-out lines (every "
        f"{summary['held_out_every']}th line, never counted):",
    ]
    lines += ["    " + line for line in format_coverage_table(rows).splitlines()]
    lines.append(f"  report     {summary['report_file']}")
    lines.append(f"  next       python create_pretraining_data.py --vocab_file="
                 f"{summary['output_file']}" + (" --do_lower_case" if summary["do_lower_case"]
                                                 else "") + " --input_file=...")
    return "\n".join(lines)
