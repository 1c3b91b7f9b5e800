"""Start/end logits → answers: n-best spans, text recovery, SQuAD 2.0 null scores.

The rules of SpanBERT's (and BERT's) `run_squad.py`:

* per window, the `n_best_size` highest start and end logits (ties: lower
  position first) are paired; a pair survives if both ends are context pieces,
  the start piece has its maximum context in this window, end ≥ start and the
  span is at most `max_answer_length` pieces;
* (v2.0) the null score is the smallest `start[0] + end[0]` ([CLS]) over the
  windows and enters the candidates as the empty answer;
* candidates are ranked by start + end logit; the text of a span is recovered
  from the original context (`get_final_text`: the de-tokenized wordpieces are
  located in the basic-tokenized original words and mapped back character by
  character), duplicates are dropped, up to `n_best_size` are kept and their
  softmax probabilities reported;
* (v2.0) the null-odds of a question is `null score − best non-empty score`;
  the answer is empty when it exceeds `null_score_diff_threshold`.

Example:
```python
preds, nbest, null_odds = make_predictions(examples, features, start_logits,
                                           end_logits, tokenizer, version_2_with_negative=True)
write_prediction_files(output_dir, preds, nbest, null_odds)
```
"""

import collections
import math
import os

import numpy as np
from tqdm import tqdm

from spanbert_tf import io_utils
# The words `get_final_text` aligns against: the model tokenizer's own basic-tokenizer
# rules (the pure-Python twin, for one short span at a time).
from spanbert_tf.tokenization import basic_tokenize


def _strip_spaces(text):
    chars, ns_to_s = [], {}
    for i, c in enumerate(text):
        if c == " ":
            continue
        ns_to_s[len(chars)] = i
        chars.append(c)
    return "".join(chars), ns_to_s


def get_final_text(pred_text, orig_text, do_lower_case):
    """Projects de-tokenized wordpiece text onto the original words (BERT's heuristic).

    Returns (text, start, end): the substring of `orig_text` and its character
    range [start, end), or `orig_text` whole when the projection fails.
    """
    tok_text = " ".join(basic_tokenize(orig_text, do_lower_case))
    start = tok_text.find(pred_text)
    if start == -1:
        return orig_text, 0, len(orig_text)
    end = start + len(pred_text) - 1
    orig_ns, orig_ns_to_s = _strip_spaces(orig_text)
    tok_ns, tok_ns_to_s = _strip_spaces(tok_text)
    if len(orig_ns) != len(tok_ns):
        return orig_text, 0, len(orig_text)
    tok_s_to_ns = {s: ns for ns, s in tok_ns_to_s.items()}
    orig_start = orig_ns_to_s.get(tok_s_to_ns.get(start, -1))
    orig_end = orig_ns_to_s.get(tok_s_to_ns.get(end, -1))
    if orig_start is None or orig_end is None:
        return orig_text, 0, len(orig_text)
    return orig_text[orig_start:orig_end + 1], orig_start, orig_end + 1


def word_char_starts(example):
    """Character offset in the context where each whitespace token starts."""
    starts, prev = [], -1
    for i, w in enumerate(example.char_to_word_offset):
        if w != prev and w >= 0:
            starts.append(i)
            prev = w
    return starts


def span_text(example, feature_tokens, token_to_orig, start_index, end_index, do_lower_case,
              word_starts=None):
    """Answer text of pieces [start_index, end_index] of a window, and its char offsets.

    `feature_tokens` are the window's wordpiece strings; offsets are into
    `example.context_text` ([start, end)). As in the official code the text joins
    the original words with single spaces, so it differs from the context slice
    where the context has other whitespace inside the answer.
    """
    tok_text = " ".join(feature_tokens[start_index:end_index + 1])
    tok_text = tok_text.replace(" ##", "").replace("##", "").strip()
    tok_text = " ".join(tok_text.split())
    orig_start, orig_end = int(token_to_orig[start_index]), int(token_to_orig[end_index])
    orig_text = " ".join(example.doc_tokens[orig_start:orig_end + 1])
    text, s, e = get_final_text(tok_text, orig_text, do_lower_case)
    # Map offsets in the space-joined words back to the context.
    if word_starts is None:
        word_starts = word_char_starts(example)
    joined_pos, context_pos = [], []
    for w in range(orig_start, orig_end + 1):
        base = word_starts[w]
        for k in range(len(example.doc_tokens[w])):
            joined_pos.append(len(joined_pos) + (w - orig_start))
            context_pos.append(base + k)
    lookup = dict(zip(joined_pos, context_pos))
    c_start = lookup.get(s, word_starts[orig_start])
    last = lookup.get(e - 1)
    c_end = last + 1 if last is not None else c_start + len(text)
    return text, c_start, c_end


# --- n-best -------------------------------------------------------------------------------


def _best_indexes(logits, n_best_size):
    return np.argsort(-np.asarray(logits, np.float64), kind="stable")[:n_best_size]


def _softmax(scores):
    if not scores:
        return []
    m = max(scores)
    exps = [math.exp(s - m) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def make_predictions(examples, features, start_logits, end_logits, tokenizer, n_best_size=20,
                     max_answer_length=30, do_lower_case=None, version_2_with_negative=False,
                     null_score_diff_threshold=0.0, progress=False):
    """(predictions, nbest, null_odds) as ordered dicts keyed by question id.

    `start_logits` / `end_logits`: float arrays [num_windows, max_seq_length] aligned
    with `features`. `nbest` entries also carry the answer's character offsets
    (`start_char`, `end_char`, -1 for the empty answer); `null_odds` is empty for v1.1.
    """
    if do_lower_case is None:
        do_lower_case = tokenizer.do_lower_case
    start_logits = np.asarray(start_logits, np.float32)
    end_logits = np.asarray(end_logits, np.float32)
    if start_logits.shape[0] != len(features) or end_logits.shape[0] != len(features):
        raise ValueError(f"{start_logits.shape[0]} logit rows for {len(features)} windows")
    by_example = collections.defaultdict(list)
    for n, example_index in enumerate(features.example_index):
        by_example[int(example_index)].append(n)
    predictions, all_nbest, null_odds = (collections.OrderedDict() for _ in range(3))
    iterator = enumerate(examples)
    if progress:
        iterator = tqdm(iterator, total=len(examples), desc="n-best", unit="question")
    for example_index, example in iterator:
        rows = by_example[example_index]
        prelim = []
        score_null, null_row, null_start, null_end = 1000000, 0, 0.0, 0.0
        for row in rows:
            s_log, e_log = start_logits[row], end_logits[row]
            to_orig = features.token_to_orig[row]
            is_max = features.token_is_max_context[row]
            num_tokens = int(features.num_tokens[row])
            if version_2_with_negative:
                feature_null = float(s_log[0]) + float(e_log[0])
                if feature_null < score_null:
                    score_null, null_row = feature_null, row
                    null_start, null_end = float(s_log[0]), float(e_log[0])
            for s in _best_indexes(s_log, n_best_size):
                for e in _best_indexes(e_log, n_best_size):
                    if s >= num_tokens or e >= num_tokens:
                        continue
                    if to_orig[s] < 0 or to_orig[e] < 0 or not is_max[s]:
                        continue
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    prelim.append((row, int(s), int(e), float(s_log[s]), float(e_log[e])))
        if version_2_with_negative:
            prelim.append((null_row, 0, 0, null_start, null_end))
        prelim.sort(key=lambda p: p[3] + p[4], reverse=True)

        seen, nbest, word_starts, row_tokens = set(), [], word_char_starts(example), {}
        for row, s, e, s_logit, e_logit in prelim:
            if len(nbest) >= n_best_size:
                break
            if s > 0:
                if row not in row_tokens:
                    row_tokens[row] = tokenizer.convert_ids_to_tokens(
                        features.input_ids[row][:int(features.num_tokens[row])])
                tokens = row_tokens[row]
                text, c_start, c_end = span_text(example, tokens, features.token_to_orig[row],
                                                 s, e, do_lower_case, word_starts)
                if text in seen:
                    continue
            else:
                text, c_start, c_end = "", -1, -1
            seen.add(text)
            nbest.append((text, s_logit, e_logit, c_start, c_end))
        if version_2_with_negative:
            if "" not in seen:
                nbest.append(("", null_start, null_end, -1, -1))
            if len(nbest) == 1:
                nbest.insert(0, ("empty", 0.0, 0.0, -1, -1))
        if not nbest:
            nbest.append(("empty", 0.0, 0.0, -1, -1))

        probs = _softmax([n[1] + n[2] for n in nbest])
        best_non_null = next((n for n in nbest if n[0]), None)
        all_nbest[example.qas_id] = [
            collections.OrderedDict([("text", t), ("probability", p), ("start_logit", sl),
                                     ("end_logit", el), ("start_char", cs), ("end_char", ce)])
            for (t, sl, el, cs, ce), p in zip(nbest, probs)]
        if not version_2_with_negative:
            predictions[example.qas_id] = nbest[0][0]
        else:
            diff = score_null - best_non_null[1] - best_non_null[2]
            null_odds[example.qas_id] = diff
            predictions[example.qas_id] = "" if diff > null_score_diff_threshold else (
                best_non_null[0])
    return predictions, all_nbest, null_odds


def best_non_null_predictions(nbest):
    """{qid: best non-empty n-best text} (the v2.0 answer before thresholding)."""
    return collections.OrderedDict(
        (qid, next((e["text"] for e in entries if e["text"]), "")) for qid, entries in
        nbest.items())


def apply_null_threshold(nbest, null_odds, threshold):
    """v2.0 answers for a threshold on the null-odds."""
    best = best_non_null_predictions(nbest)
    return collections.OrderedDict(
        (qid, "" if null_odds[qid] > threshold else text) for qid, text in best.items())


def write_json_atomic(path, obj, indent=4):
    """Writes JSON to `path` via a temporary file and a rename."""
    io_utils.write_json_atomic(path, obj, indent=indent)
    return path


def write_prediction_files(output_dir, predictions, nbest, null_odds=None):
    """predictions.json, nbest_predictions.json and (v2.0) null_odds.json; returns paths."""
    paths = {"predictions": write_json_atomic(os.path.join(output_dir, "predictions.json"),
                                              predictions),
             "nbest": write_json_atomic(os.path.join(output_dir, "nbest_predictions.json"),
                                        nbest)}
    if null_odds:
        paths["null_odds"] = write_json_atomic(os.path.join(output_dir, "null_odds.json"),
                                               null_odds)
    return paths
