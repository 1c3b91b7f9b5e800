"""Training: strategies, optimizers, and the two training loops: `trainer.Trainer` (TensorFlow:
tf.distribute, gradient accumulation, pretraining and every fine-tuning program) and
`keras_fit` (Keras `fit` on JAX / PyTorch: pretraining)."""
