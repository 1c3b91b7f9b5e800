"""Coreference metrics with the definitions of the CoNLL-2012 reference scorer v8.01.

MUC, B³ (`bcub`), CEAF-φ3 (mention, `ceafm`), CEAF-φ4 (entity, `ceafe`) follow
`CorScorer.pm` v8.01 step by step, LEA its LEA extension (Moosavi & Strube 2016,
`LEA(keyChainsOrig, responseChainsOrig)`); the CoNLL score is the mean F1 of MUC,
B³ and CEAF-φ4. Each metric sums its recall/precision numerators and denominators
over documents (micro average), then R = nr/dr, P = np/dp, F1 = 2PR/(P+R), all
reported in percent. As the scorer:

* singletons count in key and response (no mention is dropped);
* each key mention gets an id (a mention repeated in the key keeps the id of its
  last occurrence); a response mention that repeats an exact key match is removed
  (more than `max_repeated_mentions`, 10, such repeats in one evaluation: the
  scorer refuses to score -> `CorefScoreError`); a repeated response mention that
  is in no key entity keeps one id and stays in its entities;
* MUC counts, per response entity, the mentions with a later mention of the same
  key entity (after adding missed key mentions as response singletons and
  removing response singletons absent from the key, which add no links);
* B³ and LEA run over the chains as read; CEAF takes the best one-to-one entity
  alignment (here scipy's `linear_sum_assignment`, the scorer uses Munkres: the
  same optimum).

Mentions are (start, end) spans in any unit both sides share (words in CoNLL
files). Entities are lists of mentions in file order (`conll.read_conll` gives
the scorer's order).

Example:
```python
evaluator = CorefEvaluator()
evaluator.add(gold_clusters, predicted_clusters)   # one document
results = evaluator.results()   # {"muc": {"recall", "precision", "f1"}, ..., "conll_f1"}
```
"""

import collections
import json

import numpy as np
from spanbert_tf.errors import InputError
from spanbert_tf.tasks.coref import segments
from spanbert_tf.tasks.coref import conll

METRICS = ("muc", "bcub", "ceafm", "ceafe", "lea")
CONLL_METRICS = ("muc", "bcub", "ceafe")
METRIC_NAMES = {"muc": "MUC", "bcub": "B3", "ceafm": "CEAF-m (phi3)",
                "ceafe": "CEAF-e (phi4)", "lea": "LEA", "mentions": "Mentions"}
MAX_REPEATED_MENTIONS = 10


class CorefScoreError(InputError):
    """A response the reference scorer refuses to score."""


def _index(chains):
    """Mention id -> index of the last chain holding it (the scorer's `Indexa`)."""
    index = {}
    for i, chain in enumerate(chains):
        for m in chain:
            index[m] = i
    return index


def identify_mentions(key, response):
    """The scorer's `IdentifMentions`: mention ids and chains of ids.

    Returns a dict with `key_chains`, `response_chains` (ids, as read minus repeated
    exact matches), `muc_response_chains` (MUC's response), `repeated` (removed
    response repeats) and the mention identification counts `key_mentions`,
    `response_mentions`, `exact`.
    """
    ids, id_count = {}, 0
    for entity in key:
        for mention in entity:
            ids[tuple(mention)] = id_count
            id_count += 1
    mapped, exact, repeated = {}, 0, 0
    kept_response = []
    for entity in response:
        kept = []
        for mention in entity:
            mention = tuple(mention)
            if mention in mapped:
                repeated += 1
                continue
            if mention in ids:
                mapped[mention] = ids[mention]
                exact += 1
            kept.append(mention)
        if kept:
            kept_response.append(kept)
    for entity in kept_response:
        for mention in entity:
            if mention not in mapped:
                mapped[mention] = id_count
                id_count += 1
    key_chains = [[ids[tuple(m)] for m in entity] for entity in key]
    response_chains = [[mapped[m] for m in entity] for entity in kept_response]

    # MUC's response: missed key mentions become singletons, and response
    # singletons absent from the key are dropped.
    key_index, response_index = _index(key_chains), _index(response_chains)
    muc_response = [list(c) for c in response_chains]
    if len(ids) - exact > 0:
        muc_response += [[m] for chain in key_chains for m in chain if m not in response_index]
    if id_count - len(ids) > 0:
        muc_response = [c for c in muc_response if not (len(c) == 1 and c[0] not in key_index)]
    return {"key_chains": key_chains, "response_chains": response_chains,
            "muc_response_chains": muc_response, "repeated": repeated,
            "key_mentions": len(ids), "response_mentions": len(mapped), "exact": exact}


def muc(key_chains, response_chains):
    """(recall num, recall den, precision num, precision den) of MUC."""
    key_index = _index(key_chains)
    correct = 0
    for chain in response_chains:
        for i, a in enumerate(chain):
            if a in key_index and any(
                    b in key_index and key_index[a] == key_index[b] for b in chain[i + 1:]):
                correct += 1
    key_links = sum(len(c) - 1 for c in key_chains if c)
    response_links = sum(len(c) - 1 for c in response_chains if c)
    return correct, key_links, correct, response_links


def b_cubed(key_chains, response_chains):
    """(recall num, recall den, precision num, precision den) of B³."""
    key_index = _index(key_chains)
    recall, precision = 0.0, 0.0
    for chain in response_chains:
        for m in chain:
            key_chain = key_chains[key_index[m]] if m in key_index else []
            key_set = set(key_chain)
            common = sum(1 for r in chain if r in key_set)
            if chain:
                precision += common / len(chain)
            if key_chain:
                recall += common / len(key_chain)
    return (recall, sum(len(c) for c in key_chains),
            precision, sum(len(c) for c in response_chains))


def _overlaps(key_chains, response_chains):
    """[K, R]: elements of key chain i (with repeats) found in response chain j, as the
    scorer's SIM functions count them; linear in the number of mentions."""
    counts = np.zeros([len(key_chains), len(response_chains)])
    occurrences = collections.defaultdict(collections.Counter)
    for i, chain in enumerate(key_chains):
        for m in chain:
            occurrences[m][i] += 1
    for j, chain in enumerate(response_chains):
        for m in set(chain):
            for i, n in occurrences.get(m, {}).items():
                counts[i, j] += n
    return counts


def ceaf(key_chains, response_chains, entity_based):
    """(recall num, recall den, precision num, precision den) of CEAF-φ4 / CEAF-φ3."""
    from scipy.optimize import linear_sum_assignment

    similarity = _overlaps(key_chains, response_chains)
    if entity_based and similarity.size:
        sizes = (np.array([len(c) for c in key_chains])[:, None] +
                 np.array([len(c) for c in response_chains])[None, :])
        similarity = np.divide(2 * similarity, sizes, out=np.zeros_like(similarity),
                               where=sizes > 0)
    total = 0.0
    if similarity.size:
        rows, cols = linear_sum_assignment(similarity, maximize=True)
        total = float(similarity[rows, cols].sum())
    if entity_based:
        return (total, sum(1 for c in key_chains if c),
                total, sum(1 for c in response_chains if c))
    return total, sum(len(c) for c in key_chains), total, sum(len(c) for c in response_chains)


def _lea_side(chains, other_chains):
    other_index = _index(other_chains)
    resolved, size_total = 0.0, 0
    for chain in chains:
        size = len(chain)
        if size == 0:
            continue
        if size == 1:
            m = chain[0]
            correct = int(m in other_index and len(other_chains[other_index[m]]) == 1)
            links = 1
        else:
            correct = sum(1 for i, a in enumerate(chain) for b in chain[i + 1:]
                          if a in other_index and b in other_index
                          and other_index[a] == other_index[b])
            links = size * (size - 1) / 2
        resolved += size * correct / links
        size_total += size
    return resolved, size_total


def lea(key_chains, response_chains):
    """(recall num, recall den, precision num, precision den) of LEA."""
    recall, key_size = _lea_side(key_chains, response_chains)
    precision, response_size = _lea_side(response_chains, key_chains)
    return recall, key_size, precision, response_size


def score_document(key, response):
    """Numerators/denominators of every metric for one document, and its mention counts."""
    chains = identify_mentions(key, response)
    k, r = chains["key_chains"], chains["response_chains"]
    counts = {
        "muc": muc(k, chains["muc_response_chains"]),
        "bcub": b_cubed(k, r),
        "ceafm": ceaf(k, r, entity_based=False),
        "ceafe": ceaf(k, r, entity_based=True),
        "lea": lea(k, r),
        "mentions": (chains["exact"], chains["key_mentions"],
                     chains["exact"], chains["response_mentions"]),
    }
    return counts, chains["repeated"]


def rpf(recall_num, recall_den, precision_num, precision_den):
    """Recall, precision, F1 in percent as the scorer's ShowRPF (0 for empty denominators)."""
    recall = recall_num / recall_den if recall_den else 0.0
    precision = precision_num / precision_den if precision_den else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"recall": float(100 * recall), "precision": float(100 * precision),
            "f1": float(100 * f1)}


class CorefEvaluator:
    """Accumulates documents and scores them as one reference-scorer run."""

    def __init__(self, max_repeated_mentions=MAX_REPEATED_MENTIONS):
        self.max_repeated_mentions = max_repeated_mentions
        self.totals = collections.defaultdict(lambda: np.zeros(4))
        self.repeated = 0
        self.num_documents = 0

    def add(self, key, response, doc_key=None):
        """Adds one document: `key`/`response` are lists of entities of (start, end)."""
        counts, repeated = score_document(key, response or [])
        self.repeated += repeated
        if self.max_repeated_mentions is not None and self.repeated > self.max_repeated_mentions:
            where = f" (at document {doc_key})" if doc_key else ""
            raise CorefScoreError(
                f"found too many repeated mentions (> {self.max_repeated_mentions}) in the "
                f"response{where}: the reference scorer refuses to score it")
        for name, values in counts.items():
            self.totals[name] += np.asarray(values, dtype=np.float64)
        self.num_documents += 1

    def results(self):
        """{metric: {recall, precision, f1}} in percent, `conll_f1`, and `counts`:
        {metric: [recall num, recall den, precision num, precision den]}."""
        names = METRICS + ("mentions",)
        out = {name: rpf(*self.totals[name]) for name in names}
        out["conll_f1"] = sum(out[m]["f1"] for m in CONLL_METRICS) / len(CONLL_METRICS)
        out["counts"] = {name: [float(x) for x in self.totals[name]] for name in names}
        out["num_documents"] = self.num_documents
        out["repeated_response_mentions"] = self.repeated
        return out


def evaluate(key_by_doc, response_by_doc, max_repeated_mentions=MAX_REPEATED_MENTIONS):
    """Scores every key document (a missing response document has no mentions);
    response documents without a key are ignored, as the scorer does; both counted."""
    evaluator = CorefEvaluator(max_repeated_mentions)
    for doc_key, key in key_by_doc.items():
        evaluator.add(key, response_by_doc.get(doc_key, []), doc_key)
    results = evaluator.results()
    results["key_documents_without_response"] = sum(
        1 for k in key_by_doc if k not in response_by_doc)
    results["response_documents_without_key"] = sum(
        1 for k in response_by_doc if k not in key_by_doc)
    return results


def read_jsonlines_word_clusters(path):
    """{doc_key: word-span clusters} of a `.jsonlines` file. A record with `subtoken_map`
    is an official example (its wordpiece clusters are mapped to words); one without
    has word-span `clusters` ([start, end, ...]: anything after the span, such as the
    mention text, is ignored)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_number}"
            try:
                example = json.loads(line)
            except json.JSONDecodeError as e:
                raise segments.CorefJsonlinesError(f"{where}: not JSON ({e})") from None
            if not isinstance(example, dict) or "doc_key" not in example \
                    or not isinstance(example.get("clusters"), list):
                raise segments.CorefJsonlinesError(
                    f"{where}: expected an object with 'doc_key' and 'clusters'")
            if "subtoken_map" in example:
                segments.check_example(example, where)
                clusters = segments.subtoken_clusters_to_words(
                    example["clusters"], example["subtoken_map"])
            else:
                clusters = []
                for cluster in example["clusters"]:
                    for m in cluster:
                        if (not isinstance(m, list) or len(m) < 2 or not all(
                                isinstance(x, int) for x in m[:2]) or not 0 <= m[0] <= m[1]):
                            raise segments.CorefJsonlinesError(
                                f"{where}: field 'clusters' has mention {m!r}; expected "
                                "[start, end, ...] word indices, start <= end")
                    clusters.append([(m[0], m[1]) for m in cluster])
            if example["doc_key"] in out:
                raise segments.CorefJsonlinesError(
                    f"{where}: document {example['doc_key']!r} appears twice")
            out[example["doc_key"]] = clusters
    return out


def load_word_clusters(path, split_file=None):
    """{doc_key: word-span clusters} of a `.conll`/`*_gold_conll` file, a folder of them
    (optionally the ids in `split_file`), or a `.jsonlines` file (see
    `read_jsonlines_word_clusters`)."""
    if str(path).endswith(".jsonlines"):
        return read_jsonlines_word_clusters(path)
    return {d.doc_key: d.clusters for d in conll.read_conll_files(path, split_file)}


def evaluate_files(gold_file, pred_file, split_file=None,
                   max_repeated_mentions=MAX_REPEATED_MENTIONS):
    """Scores `pred_file` against `gold_file` (each `.conll`, a folder, or `.jsonlines`)."""
    return evaluate(load_word_clusters(gold_file, split_file),
                    load_word_clusters(pred_file, split_file), max_repeated_mentions)


def format_table(results):
    """A plain-text table of the results."""
    lines = [f"{'metric':<16}{'recall':>9}{'precision':>11}{'F1':>9}"]
    for name in ("mentions",) + METRICS:
        r = results[name]
        lines.append(f"{METRIC_NAMES[name]:<16}{r['recall']:>9.2f}{r['precision']:>11.2f}"
                     f"{r['f1']:>9.2f}")
    lines.append(f"{'CoNLL avg F1':<16}{'':>20}{results['conll_f1']:>9.2f}")
    return "\n".join(lines)
