"""One-step text → embedding SavedModel: the preprocessor and the encoder in one graph.

For clients that do not want to chain two models: `serving_default(text_a)` and
`pair(text_a, text_b)` (string `[batch]`) → `pooled_output` float32 `[batch, hidden]`,
`sequence_output` float32 `[batch, seq_length, hidden]` and `input_mask` int32
`[batch, seq_length]` (1 on wordpieces, 0 on padding: average `sequence_output` over it
for a mean-pooled embedding). Exactly the preprocessor's outputs fed to the encoder.

Example:
```python
module = TextEmbeddingModule(PreprocessorModule(tokenizer, 128), EncoderModule(backbone))
module.single(text_a=tf.constant(["SpanBERT masks spans."]))["pooled_output"]   # [1, hidden]
```
"""

import tensorflow as tf


class TextEmbeddingModule(tf.Module):
    """Raw text → encoder outputs, tokenization in the graph.

    Args:
        preprocessor: a `saved_model.PreprocessorModule` (fixes seq_length).
        encoder: a `saved_model.EncoderModule`.
    """

    def __init__(self, preprocessor, encoder):
        super().__init__(name="spanbert_text_embedding")
        self.preprocessor = preprocessor
        self.encoder = encoder
        self.vocab_file = preprocessor.vocab_file

    def _embed(self, inputs):
        outputs = self.encoder.serve(
            input_word_ids=inputs["input_word_ids"], input_mask=inputs["input_mask"],
            input_type_ids=inputs["input_type_ids"])
        return {
            "pooled_output": outputs["pooled_output"],
            "sequence_output": outputs["sequence_output"],
            "input_mask": inputs["input_mask"],
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text_a")])
    def single(self, text_a):
        return self._embed(self.preprocessor.single(text_a))

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="text_a"),
            tf.TensorSpec([None], tf.string, name="text_b"),
        ]
    )
    def pair(self, text_a, text_b):
        return self._embed(self.preprocessor.pair(text_a, text_b))
