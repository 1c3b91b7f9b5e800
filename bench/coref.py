"""Benchmark: coreference training and prediction speed and peak memory.

For each `--segment_lens` (384 and 512 by default) at the `--config` size (the
base model by default), on real LitBank documents (minimized with the cased
vocabulary; a fresh model, the speed does not depend on the weights):

- training: one document per step cropped to `max_training_segments` segments
  (as `run_coref.py`), forward + backward + the two-group optimizer update,
  one `tf.function` traced once; documents/s and wordpieces/s;
- prediction: whole documents, `training=False` (chunked scoring); documents/s;
- the peak resident memory (RSS) of each phase (Linux `VmHWM`, reset between phases;
  a reset starts from the current RSS, so memory the allocator kept from an earlier
  phase counts: run one phase per process, e.g. `--train_steps=0 --predict_docs=0`
  for the long document alone, for a clean peak).

Then one long document of `--long_doc_wordpieces` (~20k) wordpieces (LitBank
documents concatenated, repeated as needed) is predicted once: seconds and peak RSS
(the official code ran out of memory there: a [num_candidates, T] head attention).

    python bench/coref.py                                  # base, 384 and 512
    python bench/coref.py --config=coref_tiny --segment_lens=128 --train_steps=2 \\
        --predict_docs=1 --long_doc_wordpieces=2000       # a quick look

Prints one line per measurement and a JSON summary as the last line.
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DOCS = os.path.join(HERE, "..", "tests", "data_files", "coref", "litbank", "conll")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="coref_spanbert_base",
                        help="coreference config (configs/<name>.json), e.g. coref_tiny")
    parser.add_argument("--segment_lens", default="384,512",
                        help="comma-separated max_segment_len values")
    parser.add_argument("--conll", default=DEFAULT_DOCS,
                        help="a CoNLL file or folder of LitBank documents")
    parser.add_argument("--train_steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--predict_docs", type=int, default=3, help="documents predicted")
    parser.add_argument("--long_doc_wordpieces", type=int, default=20000,
                        help="wordpieces of the long document (0: skip it)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        args.segment_lens = [int(x) for x in args.segment_lens.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--segment_lens must be comma-separated integers, got {args.segment_lens!r}")
    if not args.segment_lens or min(args.segment_lens) < 3:
        parser.error("--segment_lens needs at least one length >= 3")
    for name in ("train_steps", "predict_docs", "long_doc_wordpieces"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must be >= 0")
    return args


def reset_peak_rss():
    """Resets the kernel's peak-RSS counter of this process (Linux); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_gib():
    """Peak RSS since the last reset (VmHWM), else since the start (getrusage), in GiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024 ** 2
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def long_document(documents, num_wordpieces, tokenizer):
    """One ConllDocument of >= `num_wordpieces` wordpieces: the documents' sentences,
    concatenated and repeated (no clusters: prediction only)."""
    import dataclasses

    sentences, speakers, total = [], [], 0
    lengths = [sum(len(ids) for ids in tokenizer.tokenize_to_ids(d.words())) for d in documents]
    while total < num_wordpieces:
        for doc, length in zip(documents, lengths):
            sentences += doc.sentences
            speakers += doc.speakers
            total += length
            if total >= num_wordpieces:
                break
    n = sum(len(s) for s in sentences)
    return dataclasses.replace(documents[0], doc_id="long_document", part=None,
                               sentences=sentences, speakers=speakers, clusters=[],
                               rows=[""] * n, coref_column_offsets=[0] * n)


def measure(args):
    sys.path.insert(0, os.path.dirname(HERE))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from spanbert_tf.modeling.backbone import build_backbone
    from spanbert_tf.modeling.config import load_config
    from spanbert_tf.tasks.coref import conll, segments
    from spanbert_tf.tasks.coref.config import load_coref_config
    from spanbert_tf.tasks.coref.model import GOLD_NAMES, MODEL_INPUT_NAMES
    from spanbert_tf.tasks.coref.task import input_signature
    from spanbert_tf.tasks.coref.task import CorefTask, truncate_document
    from spanbert_tf.tokenization import BertWordpieceTokenizer

    config = load_coref_config(args.config)
    backbone_config = load_config(config.backbone)
    vocab = os.path.join(os.path.dirname(HERE), "spanbert_tf", "resources",
                         "bert-base-cased-vocab.txt")
    tokenizer = BertWordpieceTokenizer(vocab)
    documents = conll.read_conll_files(args.conll)
    if not documents:
        raise SystemExit(f"bench/coref.py: error: no documents in {args.conll}")
    task = CorefTask(config, backbone_fn=lambda: build_backbone(backbone_config.model))
    model = task.build_model()
    rng = np.random.default_rng(args.seed)
    results = {"config": config.name, "backbone": config.backbone, "runs": []}
    names = MODEL_INPUT_NAMES + GOLD_NAMES
    predict_fn = tf.function(lambda f: model(f, training=False),
                             input_signature=[{k: v for k, v in input_signature().items()}])
    for max_len in args.segment_lens:
        if max_len > backbone_config.model.max_position_embeddings:
            raise SystemExit(f"bench/coref.py: error: segment length {max_len} > the "
                             f"backbone's {backbone_config.model.max_position_embeddings} "
                             "positions")
        features = [segments.document_to_features(segments.minimize(d, tokenizer, max_len),
                                                   max_len) for d in documents]
        run = {"max_segment_len": max_len,
               "doc_wordpieces": [int(f["input_mask"].sum()) for f in features]}
        if args.train_steps:
            optimizer = task.build_optimizer(model, max(args.train_steps + 1, 10))
            optimizer.build(model.trainable_variables)

            @tf.function(input_signature=[input_signature(with_gold=True)])
            def train_step(batch):
                with tf.GradientTape() as tape:
                    loss = model(batch, training=True)["loss"]
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply_gradients([(g, v) for g, v in zip(grads, model.trainable_variables)
                                           if g is not None])
                return loss

            def crop(i):
                doc = truncate_document(features[i % len(features)],
                                        config.coref.max_training_segments, rng)
                return {k: tf.constant(doc[k]) for k in names}

            train_step(crop(0))                          # trace + first step, untimed
            reset_peak_rss()
            batches = [crop(i) for i in range(args.train_steps)]
            start = time.perf_counter()
            for batch in batches:
                float(train_step(batch))
            seconds = time.perf_counter() - start
            pieces = sum(int(tf.reduce_sum(b["input_mask"])) for b in batches)
            run["train"] = {"steps": args.train_steps, "seconds": round(seconds, 3),
                            "docs_per_s": round(args.train_steps / seconds, 4),
                            "wordpieces_per_s": round(pieces / seconds, 1),
                            "peak_rss_gib": round(peak_rss_gib(), 3)}
            print(f"train   seg {max_len}: {run['train']['docs_per_s']:.3f} docs/s "
                  f"({run['train']['wordpieces_per_s']:.0f} wordpieces/s), "
                  f"peak RSS {run['train']['peak_rss_gib']:.2f} GiB", flush=True)
        if args.predict_docs:
            docs = [features[i % len(features)] for i in range(args.predict_docs)]
            predict_fn({k: docs[0][k] for k in MODEL_INPUT_NAMES})   # trace, untimed
            reset_peak_rss()
            start = time.perf_counter()
            for doc in docs:
                out = predict_fn({k: doc[k] for k in MODEL_INPUT_NAMES})
                out["top_antecedent_scores"].numpy()
            seconds = time.perf_counter() - start
            pieces = sum(int(d["input_mask"].sum()) for d in docs)
            run["predict"] = {"docs": len(docs), "seconds": round(seconds, 3),
                              "docs_per_s": round(len(docs) / seconds, 4),
                              "wordpieces_per_s": round(pieces / seconds, 1),
                              "peak_rss_gib": round(peak_rss_gib(), 3)}
            print(f"predict seg {max_len}: {run['predict']['docs_per_s']:.3f} docs/s "
                  f"({run['predict']['wordpieces_per_s']:.0f} wordpieces/s), "
                  f"peak RSS {run['predict']['peak_rss_gib']:.2f} GiB", flush=True)
        results["runs"].append(run)
    if args.long_doc_wordpieces:
        max_len = args.segment_lens[0]
        doc = long_document(documents, args.long_doc_wordpieces, tokenizer)
        features = segments.document_to_features(segments.minimize(doc, tokenizer, max_len),
                                                 max_len)
        predict_fn.get_concrete_function()          # traced outside the timing
        reset_peak_rss()
        start = time.perf_counter()
        out = predict_fn({k: features[k] for k in MODEL_INPUT_NAMES})
        num_top = int(out["top_span_starts"].shape[0])
        seconds = time.perf_counter() - start
        results["long_document"] = {
            "max_segment_len": max_len, "wordpieces": int(features["input_mask"].sum()),
            "segments": int(features["input_ids"].shape[0]), "top_spans": num_top,
            "seconds": round(seconds, 3), "peak_rss_gib": round(peak_rss_gib(), 3)}
        long_run = results["long_document"]
        print(f"long document: {long_run['wordpieces']} wordpieces in {long_run['segments']} "
              f"segments of {max_len}, {num_top} top spans, predicted in "
              f"{long_run['seconds']:.1f} s, peak RSS {long_run['peak_rss_gib']:.2f} GiB",
              flush=True)
    return results


def main(argv=None):
    args = parse_args(argv)
    results = measure(args)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
