"""The pretraining Task: `PretrainingTask` builds a `SpanBertPretrainer` and hands its MLM + SBO
loss terms to the one training loop (`spanbert_tf.training.trainer.Trainer`)."""


class PretrainingTask:
    """The Task (see trainer.py) of SpanBERT pretraining: MLM + `sbo_loss_weight` x SBO.

    Example:
    ```python
    task = PretrainingTask(load_config("tiny"))
    trainer = Trainer(task, strategy, "runs/x", task.config.optimizer, dataset_fn, 300)
    ```
    """

    def __init__(self, config, sbo_loss_weight=1.0):
        self.config = config
        self.sbo_loss_weight = float(sbo_loss_weight)
        self.model = None

    def build_model(self):
        from spanbert_tf.modeling.pretrainer import build_pretrainer

        self.model = build_pretrainer(self.config, sbo_loss_weight=self.sbo_loss_weight)
        return self.model

    @property
    def loss_weights(self):
        if self.model is not None:
            return dict(self.model.loss_weights)
        return {"mlm_loss": 1.0, "sbo_loss": self.sbo_loss_weight}

    def loss_terms(self, model, batch, training):
        return model.loss_terms(batch, model(batch, training=training))

    def loss_denominators(self, batch):
        return self.model.loss_denominators(batch)
