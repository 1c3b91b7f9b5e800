"""GLUE readers on the real official files in ../shared/data/glue."""

import shutil

import pytest

from spanbert_tf.tasks.classification import glue


@pytest.mark.parametrize("task,folder,rows,first_label", [
    ("rte", "RTE", 277, "not_entailment"),
    ("mrpc", "MRPC", 408, "1"),
    ("sst-2", "SST-2", 872, "1"),
    ("cola", "CoLA", 1043, "1"),
])
def test_dev_row_counts(shared_data, task, folder, rows, first_label):
    examples = glue.read_glue_split(task, shared_data / "glue" / folder, "dev")
    assert len(examples) == rows
    assert examples[0].label == first_label
    spec = glue.get_glue_task(task)
    assert all(ex.label in spec.labels for ex in examples)
    assert all((ex.text_b is not None) == spec.is_pair for ex in examples)
    assert [ex.guid for ex in examples[:2]] == ["dev-0", "dev-1"]


def test_mrpc_bom_and_quotes(shared_data):
    examples = glue.read_glue_tsv("mrpc", shared_data / "glue" / "MRPC" / "train.tsv", "train")
    assert len(examples) == 3668
    dev = glue.read_glue_tsv("mrpc", shared_data / "glue" / "MRPC" / "dev.tsv")
    # The header had a BOM; an unbalanced '"' is ordinary text (no CSV quoting).
    assert dev[0].text_b.startswith('"The foodservice pie business')
    assert dev[0].source.endswith("dev.tsv:2")


def test_cola_has_no_header(shared_data):
    examples = glue.read_glue_tsv("cola", shared_data / "glue" / "CoLA" / "dev.tsv")
    assert examples[0].text_a == "The sailors rode the breeze clear of the rocks."
    assert examples[0].source.endswith("dev.tsv:1")
    assert {ex.label for ex in examples} == {"0", "1"}


def test_task_names_and_aliases():
    assert glue.get_glue_task("SST-2").name == "sst-2"
    assert glue.get_glue_task("sst2").name == "sst-2"
    assert glue.get_glue_task("STS-B").is_regression
    assert glue.get_glue_task("mnli-mm").dev_file == "dev_mismatched.tsv"
    assert glue.get_glue_task("MNLI").dev_file == "dev_matched.tsv"
    with pytest.raises(ValueError, match="unknown GLUE task 'squad'"):
        glue.get_glue_task("squad")


def test_other_task_layouts(tmp_path):
    stsb = tmp_path / "train.tsv"
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    stsb.write_text(header + "\n0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\t"
                    "A plane is taking off.\tAn air plane is taking off.\t5.000\n")
    (ex,) = glue.read_glue_tsv("sts-b", stsb)
    assert (ex.text_a, ex.text_b, ex.label) == (
        "A plane is taking off.", "An air plane is taking off.", 5.0)
    mnli = tmp_path / "dev_matched.tsv"
    cols = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse",
            "sentence2_binary_parse", "sentence1_parse", "sentence2_parse", "sentence1",
            "sentence2", "label1", "label2", "label3", "label4", "label5", "gold_label"]
    row = ["0", "1", "2", "g", "b1", "b2", "p1", "p2", "Premise.", "Hypothesis.",
           "neutral", "neutral", "neutral", "neutral", "neutral", "neutral"]
    mnli.write_text("\t".join(cols) + "\r\n" + "\t".join(row) + "\r\n")
    (ex,) = glue.read_glue_split("mnli", tmp_path, "dev")
    assert (ex.text_a, ex.text_b, ex.label) == ("Premise.", "Hypothesis.", "neutral")
    qqp = tmp_path / "qqp.tsv"
    qqp.write_text("id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
                   "7\t15\t16\tHow?\tWhy?\t0\n")
    (ex,) = glue.read_glue_tsv("qqp", qqp)
    assert (ex.text_a, ex.text_b, ex.label) == ("How?", "Why?", "0")


def test_wrong_column_count_names_file_and_line(tmp_path, shared_data):
    path = tmp_path / "dev.tsv"
    lines = (shared_data / "glue" / "RTE" / "dev.tsv").read_text().split("\n")
    lines[5] = lines[5].rsplit("\t", 1)[0]    # drop the label column of line 6
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"dev\.tsv:6: expected 4 tab-separated columns.*found 3"):
        glue.read_glue_tsv("rte", path)


def test_unknown_label_names_file_and_line(tmp_path, shared_data):
    path = tmp_path / "dev.tsv"
    shutil.copy(shared_data / "glue" / "SST-2" / "dev.tsv", path)
    with open(path, "a") as f:
        f.write("a fine film\tpositive\n")
    with pytest.raises(ValueError, match=r"dev\.tsv:874: unknown label 'positive' for task sst-2"):
        glue.read_glue_tsv("sst-2", path)


def test_bad_regression_label_and_missing_header_column(tmp_path):
    path = tmp_path / "dev.tsv"
    path.write_text("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1"
                    "\tsentence2\tscore\n0\tg\tf\ty\to\ts\ts\ta\tb\thigh\n")
    with pytest.raises(ValueError, match=r"dev\.tsv:2: label 'high' is not a number"):
        glue.read_glue_tsv("sts-b", path)
    path.write_text("sentence\tpolarity\nfine\t1\n")
    with pytest.raises(ValueError, match=r"dev\.tsv:1: header has no column 'label'"):
        glue.read_glue_tsv("sst-2", path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.tsv"):
        glue.read_glue_split("rte", tmp_path, "train")


def test_tfds_reader_maps_fields_and_labels(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        mnli = glue.read_glue_tfds("mnli-mm", "dev", str(tmp_path))
        cola = glue.read_glue_tfds("cola", "train", str(tmp_path))
        stsb = glue.read_glue_tfds("sts-b", "dev", str(tmp_path))
    assert len(mnli) == 6 and mnli[0].source == "glue/mnli[validation_mismatched]:0"
    assert all(ex.label in ("contradiction", "entailment", "neutral") and ex.text_b
               for ex in mnli)
    assert all(ex.label in ("0", "1") and ex.text_b is None for ex in cola)
    assert all(isinstance(ex.label, float) for ex in stsb)
    with pytest.raises(ValueError, match=r"TFDS dataset glue/rte split validation is not "
                                         r"available under"):
        glue.read_glue_tfds("rte", "dev", str(tmp_path))
