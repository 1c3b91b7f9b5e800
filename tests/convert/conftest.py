"""Shared, session-scoped fixtures of the conversion tests: a tiny transformers BERT saved as an
HF folder, and helpers that compare our outputs with transformers'."""

import numpy as np
import pytest

import spanbert_tf  # noqa: F401


def write_vocab(path, size):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += [f"tok{i}" for i in range(size - len(tokens))]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(tokens) + "\n")
    return str(path)


def parity_inputs(vocab_size, batch=2, length=12, seed=3):
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab_size, size=(batch, length)).astype(np.int32)
    mask = np.ones_like(ids)
    mask[-1, length - 4:] = 0
    types = np.zeros_like(ids)
    types[0, length // 2:] = 1
    return ids, mask, types


def keras_outputs(model, ids, mask, types):
    """Our pretrainer on the parity inputs: sequence/pooled outputs and MLM logits at every position."""
    positions = np.tile(np.arange(ids.shape[1], dtype=np.int32), (ids.shape[0], 1))
    zeros = np.zeros_like(positions)
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": types,
                "masked_lm_positions": positions, "span_left_positions": zeros,
                "span_right_positions": zeros, "span_relative_positions": zeros}
    backbone = model.backbone({"token_ids": ids, "segment_ids": types, "padding_mask": mask})
    return {"sequence_output": np.asarray(backbone["sequence_output"]),
            "pooled_output": np.asarray(backbone["pooled_output"]),
            "mlm_logits": np.asarray(model(features)["mlm_logits"])}


def torch_outputs(model, ids, mask, types):
    """A transformers model on the same inputs: whatever of the three outputs it has."""
    import torch

    feed = dict(input_ids=torch.tensor(ids, dtype=torch.long),
                attention_mask=torch.tensor(mask, dtype=torch.long),
                token_type_ids=torch.tensor(types, dtype=torch.long))
    base = getattr(model, "bert", model)
    with torch.no_grad():
        out = base(**feed)
        result = {"sequence_output": out.last_hidden_state.numpy()}
        if getattr(out, "pooler_output", None) is not None:
            result["pooled_output"] = out.pooler_output.numpy()
        if base is not model:
            full = model(**feed)
            logits = getattr(full, "prediction_logits", None)
            result["mlm_logits"] = (logits if logits is not None else full.logits).numpy()
    return result


def load_model_dir(path):
    from spanbert_tf.modeling import model_dir as model_dir_lib
    from spanbert_tf.modeling.pretrainer import build_pretrainer

    info = model_dir_lib.read_model_dir(path)
    model = build_pretrainer(info.config, dtype="float32")
    model_dir_lib.restore_model(model, info.checkpoint_path)
    return model, info


@pytest.fixture(scope="session")
def parity():
    """Helpers shared by the conversion tests."""
    import types

    return types.SimpleNamespace(write_vocab=write_vocab, inputs=parity_inputs,
                                 keras_outputs=keras_outputs, torch_outputs=torch_outputs,
                                 load_model_dir=load_model_dir)


@pytest.fixture(scope="session")
def hf_bert(tmp_path_factory):
    """A random tiny transformers.BertForPreTraining (exact GeLU) saved as an HF folder."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=37, max_position_embeddings=40, hidden_act="gelu")
    model = transformers.BertForPreTraining(config).eval()
    with torch.no_grad():  # biases and LayerNorms away from 0/1 so that a mix-up shows
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    folder = tmp_path_factory.mktemp("hf_bert")
    model.save_pretrained(folder)
    write_vocab(folder / "vocab.txt", 99)
    return str(folder), model
