"""Preemption: SIGTERM or SIGINT during training ends it at a step boundary, checkpointed.

On clusters SIGTERM is the preemption notice (a grace period follows before SIGKILL) and
SIGINT is Ctrl-C. Both training loops (the TF `Trainer`, `keras_fit` for JAX/PyTorch) train
inside `StopOnSignals()`: the first SIGTERM/SIGINT only sets `requested` (a signal cannot stop
a running TensorFlow/XLA step anyway); the loop finishes its current step (or its loop of
`steps_per_loop` steps), saves a checkpoint at that step and raises
`spanbert_tf.errors.TrainingInterrupted` (a `KeyboardInterrupt`; the programs exit with
128 + the signal number). A second signal while the first is pending raises
`KeyboardInterrupt` at once, without a checkpoint (the one way out of a step that never ends).

The handlers are installed only in the main thread (Python delivers signals there; elsewhere
`StopOnSignals` does nothing) and only while training: the previous handlers come back on exit.

Example:
```python
with StopOnSignals() as stop:
    while step < until:
        step = train_some_steps()
        if stop.requested:
            raise stop.interrupted(step, save_checkpoint())
```

`continued_dataset_fn(train_dataset_fn, step, grad_accum_steps)` is the other half: the data
of a resumed run continue where the checkpoint's step left them.
"""

import signal
import sys
import threading

from spanbert_tf.errors import TrainingInterrupted

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopOnSignals:
    """Context manager: records the first SIGTERM/SIGINT instead of dying of it."""

    def __init__(self, signals=STOP_SIGNALS, announce=True):
        self.signals = tuple(signals)
        self.announce = announce
        self.signal_number = None
        self._previous = {}

    @property
    def requested(self):
        """Whether a stop signal arrived: the loop should checkpoint and stop."""
        return self.signal_number is not None

    @property
    def signal_name(self):
        return signal.Signals(self.signal_number).name if self.requested else None

    def interrupted(self, step, checkpoint):
        """The `TrainingInterrupted` to raise once the checkpoint at `step` is saved."""
        return TrainingInterrupted(self.signal_name, self.signal_number, step, checkpoint)

    def _handle(self, signum, frame):
        del frame
        if self.requested:  # a second signal: stop now, without a checkpoint
            self._restore()
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} again: stopped at once, "
                                    "without a checkpoint")
        self.signal_number = signum
        if self.announce:
            print(f"training: {signal.Signals(signum).name} received: finishing the current "
                  "steps, then saving a checkpoint and exiting (send it again to exit at once, "
                  "without one)", file=sys.stderr, flush=True)

    def _restore(self):
        for signum, previous in self._previous.items():
            # None: a handler not installed from Python; the default is the nearest to it.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.signals:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        self._restore()
        return False


def continued_dataset_fn(train_dataset_fn, step, grad_accum_steps=1):
    """`train_dataset_fn(input_context)`, continued after `step` optimizer steps (resume).

    A dataset function with `resume_at_step(step)` (`input_pipeline.PretrainingDatasetFn`)
    starts there itself (it skips records, not parsed batches, and whole epochs by
    arithmetic). Any other one (the fine-tuning programs') is skipped by the batches those
    steps consumed: `grad_accum_steps` per step and local replica. Either way a resumed run
    reads the batches the uninterrupted run would have read, provided the dataset is a fixed
    sequence (a seeded shuffle); the checkpoint's step is the input position.
    """
    step = int(step)
    resume = getattr(train_dataset_fn, "resume_at_step", None)
    if resume is not None:
        resume(step)
        return train_dataset_fn
    if not step:
        return train_dataset_fn

    def resumed_dataset_fn(input_context):
        local_replicas = max(1, input_context.num_replicas_in_sync
                             // input_context.num_input_pipelines)
        return train_dataset_fn(input_context).skip(step * int(grad_accum_steps) * local_replicas)

    return resumed_dataset_fn
