"""fetch_glue: rebuilds the official GLUE layout from the sources (here served as file:// URLs)."""

import pathlib
import zipfile

from spanbert_tf.tasks.classification import fetch_glue, glue


def _rows(path):
    return pathlib.Path(path).read_text(encoding="utf-8-sig").splitlines()


def test_mrpc_split_reproduces_the_official_dev_file(tmp_path, shared_data):
    train, dev = _rows(shared_data / "glue/MRPC/train.tsv"), _rows(shared_data / "glue/MRPC/dev.tsv")
    # Microsoft's msr_paraphrase_train.txt holds the GLUE train and dev rows together.
    source = tmp_path / "msr_paraphrase_train.txt"
    source.write_text("\n".join([train[0]] + sorted(train[1:] + dev[1:])) + "\n", encoding="utf-8")
    ids = tmp_path / "mrpc_dev_ids.tsv"
    ids.write_text("".join(f"{r.split(chr(9))[1]}\t{r.split(chr(9))[2]}\n" for r in dev[1:]))
    target = fetch_glue.fetch_task("MRPC", str(tmp_path / "cache"),
                                   mrpc_urls=(source.as_uri(), ids.as_uri()))
    assert sorted(_rows(f"{target}/dev.tsv")[1:]) == sorted(dev[1:])
    assert sorted(_rows(f"{target}/train.tsv")[1:]) == sorted(train[1:])
    examples = glue.read_glue_tsv("mrpc", f"{target}/dev.tsv")
    assert len(examples) == 408


def test_zip_task_lands_in_the_cache_layout(tmp_path, shared_data):
    dev = (shared_data / "glue/RTE/dev.tsv").read_text(encoding="utf-8")
    archive = tmp_path / "RTE.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("RTE/dev.tsv", dev)
        z.writestr("RTE/train.tsv", dev)
    url = (tmp_path / "{name}.zip").as_uri().replace("%7B", "{").replace("%7D", "}")
    target = fetch_glue.fetch_task("RTE", str(tmp_path / "cache"), zip_url=url)
    assert len(glue.read_glue_split(glue.get_glue_task("rte"), target, "dev")) == 277


def test_unknown_task_and_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SPANBERT_GLUE_CACHE", str(tmp_path))
    assert fetch_glue.glue_cache_dir() == str(tmp_path)
    assert fetch_glue.main(["--tasks=NOPE"]) == 1
