"""Splits a SQuAD JSON file by article: held-out articles for evaluation, the rest to train.

Questions on the same article share their context, so a model evaluated on an article it
was trained on is scored on text it has seen. `make demo-finetune` trains on one article
of the committed SQuAD 2.0 dev subset and evaluates on the other:

    python -m spanbert_tf.tasks.squad.split_articles --input=dev-subset.json \
        --eval_articles=Computational_complexity_theory --train_out=train.json \
        --eval_out=eval.json [--tune_every=5 --tune_out=tune.json]

`--tune_every=N` also moves every N-th paragraph of the training articles (the N-th,
2N-th, ...) to `--tune_out`: held-out training data to pick settings on (the SQuAD 2.0
no-answer threshold) without looking at the evaluation articles. `--train_answerable_only`
keeps only the answerable questions in `--train_out` (a few hundred questions are too few
to learn spans and the no-answer decision together: `make demo-finetune` trains the spans
and picks the threshold on the tuning paragraphs, which keep their unanswerable questions).

Example:
```python
train, held_out = split_by_article(dataset_json, {"Computational_complexity_theory"})
train, tune = hold_out_paragraphs(train, every=5)
train = answerable_only(train)
```
"""

import argparse
import json
import sys

from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import write_json_atomic


def split_by_article(dataset_json, eval_titles):
    """(train, eval) SQuAD dicts; `eval_titles` names the held-out articles."""
    articles = dataset_json.get("data") if isinstance(dataset_json, dict) else None
    if not isinstance(articles, list):
        raise InputError("not a SQuAD file (no top-level 'data' list)")
    titles = [a.get("title") for a in articles]
    unknown = sorted(set(eval_titles) - set(titles))
    if unknown:
        raise InputError(f"--eval_articles: no article titled {unknown[0]!r} "
                         f"(titles: {', '.join(map(str, titles))})")
    version = dataset_json.get("version")
    train = [a for a in articles if a.get("title") not in eval_titles]
    held_out = [a for a in articles if a.get("title") in eval_titles]
    if not train:
        raise InputError("--eval_articles holds every article: nothing is left to train on")
    return {"version": version, "data": train}, {"version": version, "data": held_out}


def hold_out_paragraphs(dataset_json, every):
    """(kept, held_out) SQuAD dicts: every `every`-th paragraph of each article held out."""
    if every < 2:
        raise InputError(f"--tune_every={every}: expected 2 or more (every N-th paragraph "
                         "is held out)")
    kept, held_out = [], []
    for article in dataset_json["data"]:
        paragraphs = article.get("paragraphs") or []
        for part, keep in ((kept, True), (held_out, False)):
            chosen = [p for i, p in enumerate(paragraphs, 1) if (i % every != 0) == keep]
            if chosen:
                part.append(dict(article, paragraphs=chosen))
    if not held_out:
        raise InputError(f"--tune_every={every}: no article has {every} paragraphs")
    version = dataset_json.get("version")
    return {"version": version, "data": kept}, {"version": version, "data": held_out}


def answerable_only(dataset_json):
    """The dataset without its unanswerable questions (and without emptied paragraphs)."""
    articles = []
    for article in dataset_json["data"]:
        paragraphs = []
        for paragraph in article.get("paragraphs") or []:
            qas = [qa for qa in paragraph.get("qas") or []
                   if qa.get("answers") and not qa.get("is_impossible")]
            if qas:
                paragraphs.append(dict(paragraph, qas=qas))
        if paragraphs:
            articles.append(dict(article, paragraphs=paragraphs))
    if not articles:
        raise InputError("--train_answerable_only: no answerable question is left to train on")
    return {"version": dataset_json.get("version"), "data": articles}


def _count(dataset_json):
    return sum(len(p["qas"]) for a in dataset_json["data"] for p in a["paragraphs"])


def main(argv=None):
    parser = argparse.ArgumentParser(prog="split_articles", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--eval_articles", required=True, help="comma-separated titles")
    parser.add_argument("--train_out", required=True)
    parser.add_argument("--eval_out", required=True)
    parser.add_argument("--tune_every", type=int, default=None,
                        help="hold out every N-th training paragraph to --tune_out")
    parser.add_argument("--tune_out", default=None)
    parser.add_argument("--train_answerable_only", action="store_true",
                        help="drop the unanswerable questions from --train_out")
    args = parser.parse_args(argv)
    if (args.tune_every is None) != (args.tune_out is None):
        parser.error("--tune_every and --tune_out go together")
    try:
        with open(args.input, encoding="utf-8") as f:
            data = json.load(f)
        train, held_out = split_by_article(data, set(args.eval_articles.split(",")))
        if args.tune_every:
            train, tune = hold_out_paragraphs(train, args.tune_every)
        if args.train_answerable_only:
            train = answerable_only(train)
    except (OSError, ValueError) as e:
        print(f"split_articles: error: {args.input}: {e}", file=sys.stderr)
        return 1
    write_json_atomic(args.train_out, train, indent=None)
    write_json_atomic(args.eval_out, held_out, indent=None)
    if args.tune_every:
        write_json_atomic(args.tune_out, tune, indent=None)
    print(f"split_articles: {_count(train)} training questions"
          + (" (answerable only)" if args.train_answerable_only else "")
          + f" -> {args.train_out}, "
          f"{_count(held_out)} held-out questions -> {args.eval_out}"
          + (f", {_count(tune)} tuning questions -> {args.tune_out}" if args.tune_every else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
