"""From the model's outputs to clusters, in Python and inside a TensorFlow graph.

* `predicted_antecedents`, `predicted_clusters`: the official
  `get_predicted_clusters` (numpy), used by `run_coref.py`.
* `predicted_cluster_spans`, `word_span_clusters`, `decode_word_clusters`: the
  same decoding followed by `run.word_clusters` in TensorFlow ops, for the
  serving graph (`export.py`); tests/tasks/coref/test_clusters.py requires equal
  results on random outputs.

Example:
```python
clusters = predicted_clusters(outputs)          # [((start, end), (start, end)), ...]
word_start, word_end, cluster_id = decode_word_clusters(outputs, subtoken_map)
```
"""

import numpy as np
import tensorflow as tf


def predicted_antecedents(top_antecedents, top_antecedent_scores):
    """Index (into the top spans) of each top span's best antecedent, −1 for the dummy."""
    best = np.argmax(np.asarray(top_antecedent_scores), axis=1) - 1
    top_antecedents = np.asarray(top_antecedents)
    return [int(top_antecedents[i, j]) if j >= 0 else -1 for i, j in enumerate(best)]


def predicted_clusters(outputs, output_singletons=False):
    """Clusters [((start, end), ...), ...] of subtoken spans from a model's outputs.

    As the official `get_predicted_clusters`: each top span with a (non-dummy)
    best antecedent joins that antecedent's cluster. With `output_singletons`,
    every other kept span with a positive mention score is a cluster of its own.
    """
    starts = np.asarray(outputs["top_span_starts"])
    ends = np.asarray(outputs["top_span_ends"])
    antecedents = predicted_antecedents(outputs["top_antecedents"],
                                        outputs["top_antecedent_scores"])
    clusters, cluster_of = [], {}
    for i, antecedent in enumerate(antecedents):
        if antecedent < 0:
            continue
        if antecedent >= i:
            raise ValueError(f"top span {i} has antecedent {antecedent} that does not precede it")
        antecedent_span = (int(starts[antecedent]), int(ends[antecedent]))
        if antecedent_span not in cluster_of:
            cluster_of[antecedent_span] = len(clusters)
            clusters.append([antecedent_span])
        mention = (int(starts[i]), int(ends[i]))
        clusters[cluster_of[antecedent_span]].append(mention)
        cluster_of[mention] = cluster_of[antecedent_span]
    if output_singletons:
        mention_scores = np.asarray(outputs["top_span_mention_scores"])
        for i in range(len(starts)):
            mention = (int(starts[i]), int(ends[i]))
            if mention not in cluster_of and mention_scores[i] > 0:
                cluster_of[mention] = len(clusters)
                clusters.append([mention])
    return [tuple(cluster) for cluster in clusters]


def predicted_cluster_spans(outputs, output_singletons=False):
    """The official clusters (`clusters.predicted_clusters`) of a model's outputs, in graph.

    Each top span joins the cluster of its best antecedent (pointer jumping to
    the cluster's first mention); clusters are ordered by their first link,
    mentions by position; with `output_singletons`, kept spans with a positive
    mention score and no link follow as clusters of one.
    Returns (top-span indices in output order, cluster number of each, cluster sizes).
    """
    scores = outputs["top_antecedent_scores"]
    k = tf.shape(scores)[0]
    best = tf.argmax(scores, axis=1, output_type=tf.int32) - 1
    antecedent = tf.where(
        best >= 0,
        tf.gather(outputs["top_antecedents"], tf.maximum(best, 0), batch_dims=1), -1)
    index = tf.range(k)
    linked = antecedent >= 0
    parent = tf.where(linked, antecedent, index)
    parent = tf.while_loop(
        lambda p: tf.reduce_any(tf.not_equal(tf.gather(p, p), p)),
        lambda p: [tf.gather(p, p)], [parent])[0]
    pointed_at = tf.math.unsorted_segment_max(
        tf.cast(linked, tf.int32), tf.maximum(antecedent, 0), k) > 0
    clustered = linked | pointed_at
    # A cluster is created at its first linked member (official order).
    first_link = tf.math.unsorted_segment_min(tf.where(linked, index, 2 * k), parent, k)
    key = tf.gather(first_link, parent)
    out = clustered
    if output_singletons:
        single = ~clustered & (outputs["top_span_mention_scores"] > 0)
        key = tf.where(single, 2 * k + index, key)
        out = clustered | single
    spans = tf.boolean_mask(index, out)
    span_key = tf.boolean_mask(key, out)
    order = tf.argsort(tf.cast(span_key, tf.int64) * tf.cast(k, tf.int64)
                       + tf.cast(spans, tf.int64), stable=True)
    spans, span_key = tf.gather(spans, order), tf.gather(span_key, order)
    new = tf.not_equal(span_key, tf.concat([[-1], span_key[:-1]], 0))
    cluster = tf.cumsum(tf.cast(new, tf.int32)) - 1
    num_clusters = tf.reduce_sum(tf.cast(new, tf.int32))
    size = tf.math.unsorted_segment_sum(tf.ones_like(cluster), cluster, num_clusters)
    return spans, cluster, size


def word_span_clusters(word_start, word_last, cluster, size, output_singletons=False):
    """`run.word_clusters` in graph: a mention whose word span was already output (in an
    earlier or the same cluster) is dropped, then clusters left with fewer than two
    mentions (unless singletons of one, with `output_singletons`).
    Returns (keep [M] bool, the cluster numbers renumbered over the surviving clusters).
    """
    m = tf.size(cluster)
    num_clusters = tf.size(size)
    same = tf.equal(word_start[:, None], word_start[None, :]) & tf.equal(
        word_last[:, None], word_last[None, :])
    index = tf.range(m)
    earlier = index[None, :] < index[:, None]
    # Only mentions whose word span repeats need the sequential pass.
    repeated = tf.reduce_any(same & tf.not_equal(index[:, None], index[None, :]), axis=1)
    same_cluster = tf.equal(cluster[:, None], cluster[None, :])
    repeat_in_cluster = tf.reduce_any(same & earlier & same_cluster, axis=1)
    unique_count = tf.math.unsorted_segment_sum(tf.cast(~repeated, tf.int32), cluster,
                                                num_clusters)
    singleton_ok = tf.constant(bool(output_singletons))

    def body(c, kept, survives):
        in_c = tf.equal(cluster, c) & repeated
        seen_before = tf.reduce_any(same & kept[None, :], axis=1)
        keep = in_c & ~repeat_in_cluster & ~seen_before
        count = unique_count[c] + tf.reduce_sum(tf.cast(keep, tf.int32))
        survive = (count >= 2) | (singleton_ok & tf.equal(count, 1) & tf.equal(size[c], 1))
        kept = kept | (keep & survive)
        return c + 1, kept, survives.write(c, survive)

    _, kept_repeated, survives = tf.while_loop(
        lambda c, *_: c < num_clusters, body,
        (tf.constant(0), tf.zeros([m], tf.bool),
         tf.TensorArray(tf.bool, num_clusters, element_shape=[])))
    survives = survives.stack()
    keep = tf.gather(survives, cluster) & tf.where(repeated, kept_repeated, True)
    renumbered = tf.cumsum(tf.cast(survives, tf.int32)) - 1
    return keep, tf.gather(renumbered, cluster)


def decode_word_clusters(outputs, subtoken_map, output_singletons=False):
    """(word start, word end, cluster id) [M] int32 of every output mention, as the Python
    path's `run.word_clusters(clusters.predicted_clusters(outputs), subtoken_map)`."""
    starts = tf.cast(outputs["top_span_starts"], tf.int32)
    ends = tf.cast(outputs["top_span_ends"], tf.int32)
    subtoken_map = tf.cast(subtoken_map, tf.int32)
    spans, cluster, size = predicted_cluster_spans(outputs, output_singletons)
    word_start = tf.gather(subtoken_map, tf.gather(starts, spans))
    word_last = tf.gather(subtoken_map, tf.gather(ends, spans))
    keep, cluster = word_span_clusters(word_start, word_last, cluster, size, output_singletons)
    return (tf.boolean_mask(word_start, keep), tf.boolean_mask(word_last, keep),
            tf.boolean_mask(cluster, keep))
