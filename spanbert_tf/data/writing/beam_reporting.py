"""What the Beam mode of `create_pretraining_data` reports while it runs and after.

Counters: the pipeline's steps add what they read, skip, mask and write to Beam
metrics in `METRICS_NAMESPACE` (`count`), shown live by the runner (the Dataflow,
Flink and Spark UIs); `counter_values` reads them back from the PipelineResult.

Progress: Beam's workers may run in other processes or machines, so the steps
report through a `StageProgress`. When they run in the launching process (the
FnApiRunner in memory or with threads), `progress_bars` has opened a tqdm bar
per stage there and the steps advance it, as the local run's bar; elsewhere
(worker processes, remote workers) each worker prints a line about its share
every `LOG_EVERY_SECONDS` to its stderr (a terminal locally, the runner's logs
remotely).

Example:
```python
with progress_bars(enabled=True, total_bytes=1 << 20, stages=(MASKING,)):
    result = pipeline.run()          # DoFns: StageProgress(MASKING).update(n, instances)
counter_values(result)["instances"]
```
"""

import contextlib
import os
import sys
import threading
import time

from tqdm import tqdm

METRICS_NAMESPACE = "spanbert_tf.create_pretraining_data"
LOG_EVERY_SECONDS = 30.0
COUNTING = "counting wordpieces"
MASKING = "creating pretraining data"
WRITING = "writing shards"

_bars = {}  # stage -> {"spec", "bar", "instances"}: in this process while a run goes
_lock = threading.Lock()


def count(name, value):
    """Adds `value` to the Beam counter `name` (call from a pipeline step)."""
    from apache_beam.metrics import Metrics

    if value:
        Metrics.counter(METRICS_NAMESPACE, name).inc(int(value))


def counter_values(result):
    """{counter name: value} of a finished PipelineResult, summed over steps.

    The committed values; where a runner reports none (some portable runners),
    the attempted ones.
    """
    from apache_beam.metrics.metric import MetricsFilter

    values = {}
    query = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    for counter in query["counters"]:
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        values[name] = values.get(name, 0) + int(value or 0)
    return values


@contextlib.contextmanager
def progress_bars(enabled, total_bytes=None, stages=(MASKING,), num_shards=None):
    """A tqdm bar per stage in this process, for the steps running here.

    A stage's bar opens when its steps first report (closing the bars of the
    stages before it: the FnApiRunner runs them one after the other).
    `total_bytes`: the input size when known (uncompressed text), for the byte
    stages; `num_shards`: the total of the `WRITING` stage.
    """
    if enabled:
        with _lock:
            for stage in stages:
                byte_stage = stage != WRITING
                _bars[stage] = {"bar": None, "instances": 0, "spec": dict(
                    total=total_bytes if byte_stage else num_shards, desc=stage,
                    unit="B" if byte_stage else "shard", unit_scale=byte_stage,
                    file=sys.stderr, mininterval=0.5, leave=False)}
    try:
        yield
    finally:
        with _lock:
            for stage in stages:
                entry = _bars.pop(stage, None)
                if entry is not None and entry["bar"] is not None:
                    entry["bar"].close()


def _bar(entry):
    """The entry's tqdm bar, opened now if needed (the other stages' bars closed)."""
    if entry["bar"] is None:
        for other in _bars.values():
            if other["bar"] is not None:
                other["bar"].close()
        entry["bar"] = tqdm(**entry["spec"])
    return entry["bar"]


class StageProgress:
    """A pipeline step's progress: the bar of this process, else a periodic line.

    Args:
        stage: `COUNTING`, `MASKING` or `WRITING`.
        enabled: False: nothing is shown (--noprogress).
    """

    def __init__(self, stage, enabled=True):
        self.stage, self.enabled = stage, enabled
        self.units, self.instances, self._last_line = 0, 0, None

    def update(self, units, instances=0):
        """`units` more bytes (shards for `WRITING`) done, `instances` more written."""
        if not self.enabled:
            return
        with _lock:
            entry = _bars.get(self.stage)
            if entry is not None:
                bar = _bar(entry)
                bar.update(units)
                if instances:
                    entry["instances"] += instances
                    bar.set_postfix(instances=entry["instances"], refresh=False)
                return
        self.units += units
        self.instances += instances
        now = time.monotonic()
        if self._last_line is None:
            self._last_line = now
        elif now - self._last_line >= LOG_EVERY_SECONDS:
            self._last_line = now
            print(self.line(), file=sys.stderr, flush=True)

    def line(self):
        """This worker's share so far, in one line."""
        done = (f"{self.units:,} shard(s)" if self.stage == WRITING
                else f"{self.units / 1e6:,.1f} MB of input")
        instances = f", {self.instances:,} instances" if self.instances else ""
        return (f"create_pretraining_data (Beam worker, pid {os.getpid()}): "
                f"{self.stage}: {done}{instances}")
