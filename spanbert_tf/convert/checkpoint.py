"""Checkpoint conversion: Hugging Face / google-research TF1 / our model dirs ⇄ ours / HF.

Every input is read into *canonical weights* (see `convert_hf`), then written
as a model dir (config.json + vocab.txt + a `tf.train.Checkpoint(model=
SpanBertPretrainer, step=0)` checkpoint that `export_saved_model.py`,
`run_pretraining.py --init_checkpoint` and the fine-tuning programs accept) or
as a Hugging Face folder (`config.json` + `model.safetensors` + vocab) that
`transformers.BertForMaskedLM` / `BertModel` load with no missing keys, or as a
keras-hub preset dir (`spanbert_tf.presets.preset_io`).

What cannot be carried over is reported, never silently lost: an NSP head is
dropped (SpanBERT has none); a missing pooler / MLM head, and the SBO head (HF
has no format for it), are initialised from `seed`; the SBO head is not
written to HF.

Example:
```python
report = convert_checkpoint("hf", "spanbert-base-cased", "keras", "runs/spanbert_base")
print(report.summary())
```
"""

import dataclasses
import json
import os
import pathlib

import spanbert_tf  # noqa: F401  (KERAS_BACKEND)

from spanbert_tf.convert import hf as convert_hf, keras_weights, tf1 as convert_tf1
from spanbert_tf.errors import InputError, MissingFileError, OutputExistsError
from spanbert_tf.modeling import model_dir as model_dir_lib
from spanbert_tf.modeling.config import OptimizerConfig, SpanBertConfig
from spanbert_tf.tokenization import BertWordpieceTokenizer, load_vocab

INPUT_FORMATS = ("hf", "tf1", "keras")
OUTPUT_FORMATS = ("keras", "hf", "keras_hub_preset")


@dataclasses.dataclass
class ConversionReport:
    """What a conversion did: tensors mapped, dropped, initialised, not exported."""

    input_format: str
    input: str
    output_format: str
    output: str
    num_weights: int = 0
    dropped: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    initialised: list = dataclasses.field(default_factory=list)
    not_exported: list = dataclasses.field(default_factory=list)
    do_lower_case: bool = False
    do_lower_case_source: str = ""
    checkpoint_path: str = None

    def summary(self):
        lines = [
            f"converted {self.input_format} {self.input} -> {self.output_format} {self.output}",
            f"  {self.num_weights} tensors mapped; do_lower_case={self.do_lower_case} "
            f"({self.do_lower_case_source})",
        ]
        if self.dropped:
            lines.append(f"  dropped (no SpanBERT counterpart): {', '.join(self.dropped)}")
        if self.skipped:
            lines.append(f"  skipped (buffers / tied copies): {', '.join(self.skipped)}")
        if self.initialised:
            lines.append(f"  not in the input, initialised: {', '.join(self.initialised)}")
        if self.not_exported:
            lines.append(f"  not representable in the output, left out: {', '.join(self.not_exported)}")
        if self.checkpoint_path:
            lines.append(f"  checkpoint: {self.checkpoint_path}")
        return "\n".join(lines)


def _lower_case_from_folder(folder):
    """(do_lower_case, source) from tokenizer_config.json or the folder name, else None."""
    folder = pathlib.Path(folder)
    folder = folder if folder.is_dir() else folder.parent
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        with open(tokenizer_config, encoding="utf-8") as f:
            value = json.load(f).get("do_lower_case")
        if isinstance(value, bool):
            return value, str(tokenizer_config)
    name = folder.resolve().name.lower()
    if "uncased" in name:
        return True, f"folder name {folder.name!r}"
    if "cased" in name:
        return False, f"folder name {folder.name!r}"
    return None


def build_model(model_config, seed=0):
    """A float32 `SpanBertPretrainer` for `model_config`, initialised from `seed`."""
    import keras

    from spanbert_tf.modeling.pretrainer import build_pretrainer

    keras.utils.set_random_seed(seed)
    config = SpanBertConfig(name="converted", model=model_config, optimizer=OptimizerConfig())
    return build_pretrainer(config, dtype="float32")


def _read_input(input_format, input_path, vocab_file, do_lower_case, report, seed=0):
    """→ (model_config, canonical weights or None, keras model or None, vocab, lower)."""
    if input_format == "keras":
        info = model_dir_lib.read_model_dir(input_path)
        model = build_model(info.config.model, seed)
        try:
            model_dir_lib.restore_model(model, info.checkpoint_path)
        except ValueError:
            # A fine-tuned model dir: only its encoder is a SpanBERT encoder.
            model_dir_lib.restore_backbone(model.backbone, info.checkpoint_path)
            report.initialised += ["mlm_head", "sbo_head"]
        report.do_lower_case, report.do_lower_case_source = info.do_lower_case, "model dir config.json"
        if do_lower_case is not None and do_lower_case != info.do_lower_case:
            raise InputError(
                f"--do_lower_case={do_lower_case} contradicts {info.model_dir}/config.json "
                f"(do_lower_case={info.do_lower_case})"
            )
        return info.config, None, model, vocab_file or info.vocab_file
    if input_format == "hf":
        model_config, _ = convert_hf.read_hf_config(input_path)
        tensors = convert_hf.read_hf_tensors(input_path)
        source, names = str(input_path), None
        default_vocab = os.path.join(input_path, "vocab.txt")
    elif input_format == "tf1":
        model_config, tensors, source, names = convert_tf1.read_tf1_checkpoint(input_path)
        default_vocab = convert_tf1.default_tf1_vocab(input_path)
    else:
        raise InputError(f"--input_format must be one of {INPUT_FORMATS}, got {input_format!r}")
    weights, found = convert_hf.canonicalize_hf_tensors(
        tensors, model_config.num_layers, source, display_names=names)
    report.dropped, report.skipped = found["dropped"], found["skipped"]
    if found["missing_pooler"]:
        report.initialised.append("pooler")
    if found["missing_mlm_head"]:
        report.initialised.append("mlm_head")
    report.initialised.append("sbo_head")
    vocab_file = vocab_file or default_vocab
    if not vocab_file or not os.path.isfile(vocab_file):
        raise MissingFileError(
            f"no vocabulary: {default_vocab or input_path + '/vocab.txt'} not found; pass --vocab_file"
        )
    if do_lower_case is not None:
        report.do_lower_case, report.do_lower_case_source = bool(do_lower_case), "--do_lower_case"
    else:
        guess = _lower_case_from_folder(input_path)
        report.do_lower_case, report.do_lower_case_source = guess or (False, "default (cased)")

    num_tokens = len(load_vocab(vocab_file))
    if num_tokens > model_config.vocab_size:
        raise InputError(
            f"vocabulary {vocab_file} has {num_tokens} tokens but the checkpoint's "
            f"vocab_size is {model_config.vocab_size}; pass the matching --vocab_file")
    config = SpanBertConfig(name=f"converted-{input_format}", model=model_config, optimizer=OptimizerConfig())
    return config, weights, None, vocab_file


def convert_checkpoint(input_format, input_path, output_format, output_dir, vocab_file=None,
                       do_lower_case=None, seed=0, task_presets=None):
    """Converts a checkpoint; returns a `ConversionReport`.

    Args:
        input_format: "hf" (folder with config.json + model.safetensors or
            pytorch_model.bin), "tf1" (google-research/bert folder or
            `bert_model.ckpt` prefix) or "keras" (our model dir or checkpoint prefix).
        input_path: the input folder / prefix.
        output_format: "keras" (a model dir), "hf" or "keras_hub_preset" (a
            preset dir that `keras_hub.models.Backbone.from_preset` loads after
            `import spanbert_tf.presets`; see `spanbert_tf.presets`).
        output_dir: where to write.
        vocab_file: vocabulary; default `vocab.txt` of the input (folder).
        do_lower_case: None = from the input (model dir, tokenizer_config.json,
            "uncased" in the folder name), else cased.
        seed: initialises what the input lacks (pooler, heads).
        task_presets: `{task kind: fn(model dir) -> keras-hub Task}` for
            `keras` -> `keras_hub_preset` of a fine-tuned model dir (a task preset);
            `convert_checkpoint.py` passes `spanbert_tf.hub.TASK_PRESETS`. Without an entry
            for its kind, a fine-tuned model dir converts as its backbone.
    """
    if output_format not in OUTPUT_FORMATS:
        raise InputError(f"--output_format must be one of {OUTPUT_FORMATS}, got {output_format!r}")
    existing = {"keras": "checkpoint", "hf": convert_hf.SAFETENSORS_FILE,
                "keras_hub_preset": "config.json"}[output_format]
    if os.path.exists(os.path.join(output_dir, existing)):
        raise OutputExistsError(f"{output_dir} already holds a {existing}; choose an empty --output")
    report = ConversionReport(input_format, str(input_path), output_format, str(output_dir))
    if output_format == "keras_hub_preset" and input_format == "keras":
        info = model_dir_lib.read_model_dir(str(input_path))
        build_task = (task_presets or {}).get(model_dir_lib.task_kind(info))
        if build_task is not None:
            # A fine-tuned model dir (run_classifier.py, run_squad.py, ...): its keras-hub Task.
            from spanbert_tf.presets.preset_io import save_preset

            task = build_task(str(input_path))
            save_preset(output_dir, task.backbone, task.preprocessor.tokenizer, task=task)
            report.num_weights = len(task.weights)
            report.do_lower_case, report.do_lower_case_source = info.do_lower_case, "model dir config.json"
            return report
    config, weights, model, vocab_file = _read_input(
        input_format, str(input_path), vocab_file, do_lower_case, report, seed)
    if model is None:
        model = build_model(config.model, seed)
        report.num_weights = len(keras_weights.assign_weights(
            model.backbone, weights, mlm_head=model.mlm_head, source=str(input_path)))
    else:
        report.num_weights = len(model.weights)
    if output_format == "keras":
        import tensorflow as tf

        os.makedirs(output_dir, exist_ok=True)
        model_dir_lib.write_model_dir_metadata(output_dir, config, vocab_file, report.do_lower_case)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="global_step")
        checkpoint = tf.train.Checkpoint(model=model, step=step)
        manager = tf.train.CheckpointManager(
            checkpoint, output_dir, max_to_keep=1, checkpoint_name=model_dir_lib.CHECKPOINT_NAME)
        report.checkpoint_path = manager.save(checkpoint_number=0)
        return report
    if output_format == "keras_hub_preset":
        from spanbert_tf.presets.preset_io import save_pretrainer_preset

        heads = ("mlm_head", "sbo_head")
        with_heads = not any(x in report.initialised for x in heads)
        # Trained heads travel as a SpanBertMaskedLM task; initialised ones are left out.
        save_pretrainer_preset(output_dir, model, vocab_file, report.do_lower_case, with_heads)
        if not with_heads:
            report.initialised = [x for x in report.initialised if x not in heads]
            report.not_exported += list(heads)
        return report

    weights = keras_weights.extract_weights(model.backbone, mlm_head=model.mlm_head)
    report.initialised = [x for x in report.initialised if x != "sbo_head"]
    report.not_exported.append("sbo_head")
    pad_id = BertWordpieceTokenizer(vocab_file, report.do_lower_case).pad_id
    convert_hf.write_hf_folder(output_dir, weights, config.model, vocab_file, report.do_lower_case, pad_id)
    report.num_weights = len(weights)
    return report
