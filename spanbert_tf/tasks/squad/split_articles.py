"""Splits a SQuAD JSON file by article: held-out articles for evaluation, the rest to train.

Questions on the same article share their context, so a model evaluated on an article it
was trained on is scored on text it has seen. `make demo-finetune` trains on one article
of the committed SQuAD 2.0 dev subset and evaluates on the other:

    python -m spanbert_tf.tasks.squad.split_articles --input=dev-subset.json \
        --eval_articles=Computational_complexity_theory --train_out=train.json \
        --eval_out=eval.json

Example:
```python
train, held_out = split_by_article(dataset_json, {"Computational_complexity_theory"})
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="split_articles", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--eval_articles", required=True, help="comma-separated titles")
    parser.add_argument("--train_out", required=True)
    parser.add_argument("--eval_out", required=True)
    args = parser.parse_args(argv)
    try:
        with open(args.input, encoding="utf-8") as f:
            data = json.load(f)
        train, held_out = split_by_article(data, set(args.eval_articles.split(",")))
    except (OSError, ValueError) as e:
        print(f"split_articles: error: {args.input}: {e}", file=sys.stderr)
        return 1
    write_json_atomic(args.train_out, train, indent=None)
    write_json_atomic(args.eval_out, held_out, indent=None)
    count = lambda d: sum(len(p["qas"]) for a in d["data"] for p in a["paragraphs"])  # noqa: E731
    print(f"split_articles: {count(train)} training questions -> {args.train_out}, "
          f"{count(held_out)} held-out questions -> {args.eval_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
