"""`Trainer.predict` / `predict_elements`: the model over a dataset, on the Trainer's strategy.

A mix-in of `Trainer` (it uses the Trainer's strategy, model and `_build`), kept apart so that
the training loop reads on its own.
"""

import numpy as np
import tensorflow as tf

from spanbert_tf.training.batches import model_inputs, outputs_to_dict


class TrainerPredictions:
    """Prediction over global batches (`predict`) or element by element (`predict_elements`)."""

    def predict(self, dataset):
        """Runs `model(batch, training=False)` over `dataset` (global batches).

        Elements may be a features dict or an `(inputs, labels...)` tuple (the
        first item is fed to the model). Returns `{name: np.ndarray}`, the
        outputs concatenated along the batch axis in dataset order (a non-dict
        output is returned as `{"output": ...}`).
        """
        chunks = {}
        for out in self._predict_batches(dataset):
            for name, parts in out.items():
                chunks.setdefault(name, []).extend(parts)
        return {name: np.concatenate(parts, axis=0) for name, parts in chunks.items()}

    def predict_elements(self, dataset):
        """Runs the model on each element of `dataset` (one replica); returns a list of
        `{name: np.ndarray}`, one per element, as the model returned them (elements of
        different shapes, e.g. one coreference document each, are not concatenated)."""
        if self.strategy.num_replicas_in_sync != 1:
            raise ValueError(f"predict_elements runs on one replica; the strategy has "
                             f"{self.strategy.num_replicas_in_sync}")
        return [{name: parts[0] for name, parts in out.items()}
                for out in self._predict_batches(dataset, signature=dataset.element_spec)]

    def _predict_batches(self, dataset, signature=None):
        """Yields, per dataset element, {name: [per-replica np.ndarray, ...]}.

        With `signature` (one replica) the step is traced once for that
        element spec (no retracing on every new shape).
        """
        if not self._built:
            self._build(dataset.element_spec, for_training=False)
        model = self.model

        def predict_step(batch):
            return outputs_to_dict(model(model_inputs(batch), training=False))

        if signature is not None:
            key = repr(signature)
            if key not in self._signature_predict_fns:
                self._signature_predict_fns[key] = tf.function(
                    predict_step, input_signature=[signature])
            predict_fn = self._signature_predict_fns[key]
        else:
            if self._predict_fn is None:
                self._predict_fn = tf.function(predict_step, reduce_retracing=True)
            predict_fn = self._predict_fn
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        dist = self.strategy.experimental_distribute_dataset(dataset.with_options(options))
        for batch in dist:
            out = self.strategy.run(predict_fn, args=(batch,))
            yield {name: [np.asarray(local)
                          for local in self.strategy.experimental_local_results(value)]
                   for name, value in out.items()}
