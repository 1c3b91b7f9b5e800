"""The demo client: masked span filled through the exported preprocessor + pretrainer."""

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "spanbert_tf", "tasks", "pretraining", "demo_fill_span.py")


def _run(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_demo_fills_the_span_with_tensorflow_only(exported):
    export_dir, _ = exported
    proc = _run(f"--export_dir={export_dir}", "--text=The tower was designed by Gustave Eiffel .",
                "--span=Gustave Eiffel", "--top_k=3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.strip() == ""  # TensorFlow's start-up lines are silenced
    out = proc.stdout
    assert "input   : [CLS] The tower was designed by [MASK] [MASK] [MASK] [MASK] [MASK] . [SEP]" in out
    assert "span    : Gustav ##e E ##iff ##el" in out
    assert out.count("best fill:") == 2 and out.count("joint best string: ") == 2
    lines = [line for line in out.splitlines() if line.strip().startswith("[0]")]
    assert len(lines) == 2 and len(lines[0].split("->")[1].split()) == 6  # 3 × (token, prob)
    assert out.rstrip().endswith("loaded with TensorFlow only")


def test_demo_rejects_a_span_not_in_the_text(exported):
    proc = _run(f"--export_dir={exported[0]}", "--text=abc", "--span=xyz")
    assert proc.returncode == 1
    assert "demo_fill_span: error: --span 'xyz' does not occur in --text 'abc'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_demo_top_k_above_the_exported_k_is_a_clear_error(exported):
    proc = _run(f"--export_dir={exported[0]}", "--text=The tower was designed by Gustave Eiffel .",
                "--span=Gustave Eiffel", "--top_k=9")
    assert proc.returncode == 1
    assert ("demo_fill_span: error: --top_k=9 but the export returns 5 predictions per position "
            "(export_saved_model.py --top_k)") in proc.stderr
    assert "Traceback" not in proc.stderr


def _demo_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("demo_fill_span", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_joint_best_string_starts_a_word_and_glues_pieces():
    joint_best_fill = _demo_module().joint_best_fill
    candidates = [[("##x", 0.6), ("Gust", 0.3), ("[UNK]", 0.1)],
                  [("##ave", 0.5), ("Eiffel", 0.4)],
                  [("[SEP]", 0.7), ("Eiffel", 0.2)]]
    text, p, pieces = joint_best_fill(candidates)
    assert (text, pieces) == ("Gustave Eiffel", ["Gust", "##ave", "Eiffel"])
    assert abs(p - 0.3 * 0.5 * 0.2) < 1e-12
    assert joint_best_fill([[("##a", 0.9), ("[MASK]", 0.1)]]) is None
