"""Training: strategies, optimizers, the one training loop."""

