"""build_vocab.py as a user runs it: the summary with the coverage table, one-line errors."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, os.path.join(REPO, "build_vocab.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300, cwd=cwd)


def test_missing_input_and_bad_reserved_tokens_are_one_line(tmp_path):
    proc = _run(f"--input_file={tmp_path / 'none.txt'}", f"--output_file={tmp_path / 'v.txt'}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"build_vocab.py: error: --input_file {str(tmp_path / 'none.txt')!r}: no such file")
    text = tmp_path / "t.txt"
    text.write_text("a b c\n")
    proc = _run(f"--input_file={text}", "--reserved_tokens=[PAD],[UNK]")
    assert proc.returncode == 1
    assert "missing [CLS] [SEP] [MASK]" in proc.stderr.strip().splitlines()[-1]


def test_summary_names_the_vocab_the_report_and_the_next_command(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("\n".join(["Le café est fermé.", "北京大学", "The cat sat."] * 20) + "\n",
                    encoding="utf-8")
    out = tmp_path / "vocab.txt"
    proc = _run(f"--input_file={text}", f"--output_file={out}", "--vocab_size=200",
                "--noprogress", "--held_out_every=5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"build_vocab.py: wrote {out} (") and "asked 200" in lines[0]
    assert any("vocab.txt (learned)" in x for x in lines)
    assert any("bert-base-cased-vocab.txt (reference)" in x for x in lines)
    assert lines[-1].strip() == (f"next       python create_pretraining_data.py "
                                 f"--vocab_file={out} --input_file=...")
    assert (tmp_path / "vocab.txt.coverage.json").is_file()
