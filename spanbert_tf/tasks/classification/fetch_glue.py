"""Fetches GLUE tasks from their official sources into a local cache.

GLUE's licence terms do not let this repository redistribute the data, so the
tests and `make demo-finetune` read it from a cache this module fills:

    python -m spanbert_tf.tasks.classification.fetch_glue --tasks=MRPC,RTE

writes `<cache>/MRPC/{train,dev}.tsv`, `<cache>/RTE/{train,dev}.tsv`, ... in the
official GLUE layout. The cache is `$SPANBERT_GLUE_CACHE`, else
`$XDG_CACHE_HOME/spanbert_tf/glue`, else `~/.cache/spanbert_tf/glue`.

Sources: the GLUE benchmark's own archives (`dl.fbaipublicfiles.com/glue/data/<task>.zip`);
MRPC, which GLUE does not host, is rebuilt as GLUE builds it: SentEval's copy of
Microsoft's `msr_paraphrase_train.txt`, split into train/dev by GLUE's
`mrpc_dev_ids.tsv`. Each file is written atomically; a task already in the cache is
left alone unless `--overwrite`.

Example:
```python
fetch_task("RTE", glue_cache_dir())          # -> "~/.cache/spanbert_tf/glue/RTE"
```
"""

import argparse
import io
import os
import sys
import urllib.request
import zipfile

from spanbert_tf.errors import InputError
from spanbert_tf.io_utils import write_text_atomic

GLUE_ZIP_URL = "https://dl.fbaipublicfiles.com/glue/data/{name}.zip"
MRPC_TRAIN_URL = "https://dl.fbaipublicfiles.com/senteval/senteval_data/msr_paraphrase_train.txt"
MRPC_DEV_IDS_URL = "https://dl.fbaipublicfiles.com/glue/data/mrpc_dev_ids.tsv"
# Folder names as GLUE spells them (and as ../shared/data/glue lays them out).
TASKS = ("CoLA", "SST-2", "MRPC", "STS-B", "QQP", "MNLI", "QNLI", "RTE", "WNLI")


def glue_cache_dir():
    """Where fetched GLUE tasks live (see the module docstring)."""
    if os.environ.get("SPANBERT_GLUE_CACHE"):
        return os.environ["SPANBERT_GLUE_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "spanbert_tf", "glue")


def _download(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read()


def split_mrpc(train_text, dev_ids_text):
    """GLUE's MRPC train/dev split of `msr_paraphrase_train.txt`: returns (train, dev) TSV text.

    `dev_ids_text` has one `<#1 ID>\\t<#2 ID>` pair per line; those rows form dev.tsv.
    Both outputs keep the source header line.
    """
    dev_ids = {tuple(line.strip().split("\t")) for line in dev_ids_text.splitlines()
               if line.strip()}
    lines = train_text.lstrip("\ufeff").splitlines()
    if not lines or not lines[0].startswith("Quality"):
        raise InputError("MRPC source: expected a header line starting with 'Quality'")
    train, dev = [lines[0]], [lines[0]]
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise InputError(f"MRPC source: expected 5 tab-separated fields, got {len(fields)}")
        (dev if (fields[1], fields[2]) in dev_ids else train).append(line)
    if len(dev) == 1:
        raise InputError("MRPC source: no row matches the dev ids")
    return "\n".join(train) + "\n", "\n".join(dev) + "\n"


def fetch_task(name, cache_dir, overwrite=False, mrpc_urls=(MRPC_TRAIN_URL, MRPC_DEV_IDS_URL),
               zip_url=GLUE_ZIP_URL):
    """Downloads one GLUE task into `cache_dir/<name>`; returns that folder."""
    if name not in TASKS:
        raise InputError(f"--tasks: unknown GLUE task {name!r} (one of {', '.join(TASKS)})")
    target = os.path.join(cache_dir, name)
    if os.path.isfile(os.path.join(target, "dev.tsv")) and not overwrite:
        return target
    if name == "MRPC":
        train, dev = split_mrpc(_download(mrpc_urls[0]).decode("utf-8"),
                                _download(mrpc_urls[1]).decode("utf-8"))
        write_text_atomic(os.path.join(target, "train.tsv"), train)
        write_text_atomic(os.path.join(target, "dev.tsv"), dev)
        return target
    archive = zipfile.ZipFile(io.BytesIO(_download(zip_url.format(name=name))))
    for member in archive.namelist():
        parts = member.split("/")
        if member.endswith(".tsv") and len(parts) == 2:
            write_text_atomic(os.path.join(target, parts[1]),
                              archive.read(member).decode("utf-8"))
    if not os.path.isfile(os.path.join(target, "dev.tsv")) and name != "MNLI":
        raise InputError(f"{zip_url.format(name=name)}: no {name}/dev.tsv in the archive")
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="fetch_glue", description="Fetch GLUE tasks from their official sources.")
    parser.add_argument("--tasks", default="MRPC,RTE,CoLA,SST-2",
                        help="comma-separated GLUE task folders (default: %(default)s)")
    parser.add_argument("--cache_dir", default=None,
                        help="where to write (default: $SPANBERT_GLUE_CACHE or ~/.cache/...)")
    parser.add_argument("--overwrite", action="store_true", help="fetch again if present")
    args = parser.parse_args(argv)
    cache_dir = args.cache_dir or glue_cache_dir()
    for name in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        try:
            print(f"fetch_glue: {name} -> {fetch_task(name, cache_dir, args.overwrite)}")
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            print(f"fetch_glue: error: {name}: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
