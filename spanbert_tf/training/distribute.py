"""The `tf.distribute` strategy factory used by every training program.

One function, `get_strategy`, maps the `--strategy` flag of the programs to a
`tf.distribute.Strategy`:

| name                    | what it runs on                                                  |
|-------------------------|------------------------------------------------------------------|
| `default`               | the default (no-op) strategy: one device, as plain TensorFlow     |
| `one_device`            | `OneDeviceStrategy` on the first GPU, else the CPU               |
| `mirrored`              | `MirroredStrategy`: synchronous data parallelism on one machine  |
|                         | (all GPUs, or `num_gpus` of them, or `cpu_devices` logical CPUs) |
| `multi_worker_mirrored` | `MultiWorkerMirroredStrategy`: several machines, from `TF_CONFIG` |
| `tpu`                   | `TPUStrategy` on `tpu` (a name, `grpc://host:port`, or `local`)  |

`cpu_devices=N` splits the host CPU into N logical devices, so `mirrored` can be
exercised (and tested) on a machine without accelerators. It has to run before
TensorFlow initialises its devices, i.e. before the first op of the process.

Example:
```python
strategy = get_strategy("mirrored", cpu_devices=2)
with strategy.scope():
    model = build_model()
```
"""

import json
import os
import socket
import urllib.parse

import tensorflow as tf

from spanbert_tf.errors import InputError

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
# Seconds to wait for a TPU worker's gRPC port before giving up.
TPU_CONNECT_TIMEOUT_S = 5.0


class StrategyError(InputError):
    """A strategy that cannot be built here (no TPU, bad TF_CONFIG, ...)."""


def configure_cpu_devices(num_devices):
    """Splits the host CPU into `num_devices` logical devices (idempotent).

    Raises `StrategyError` if TensorFlow already initialised its devices with a
    different split (call this before any TensorFlow op of the process).
    """
    if num_devices is None or num_devices < 1:
        raise StrategyError(f"cpu_devices must be >= 1, got {num_devices}")
    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError:
        logical = len(tf.config.list_logical_devices("CPU"))
        if logical == num_devices:
            return
        raise StrategyError(
            f"cannot split the CPU into {num_devices} logical devices: TensorFlow already "
            f"initialised {logical} CPU device(s) in this process (set cpu_devices before "
            "running any TensorFlow op)"
        ) from None


def _gpus(num_gpus):
    gpus = tf.config.list_logical_devices("GPU")
    if num_gpus is None:
        return gpus
    if num_gpus > len(gpus):
        raise StrategyError(f"num_gpus={num_gpus} but only {len(gpus)} GPU(s) are visible")
    return gpus[:num_gpus]


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return  # a single worker: MultiWorkerMirroredStrategy runs locally.
    try:
        cfg = json.loads(raw)
        cluster, task = cfg["cluster"], cfg["task"]
        workers = cluster[task["type"]]
        workers[int(task["index"])]
    except (ValueError, KeyError, TypeError, IndexError) as e:
        raise StrategyError(
            "TF_CONFIG is not a valid cluster description (need "
            '{"cluster": {"worker": [...]}, "task": {"type": "worker", "index": i}}): '
            f"{type(e).__name__}: {e}"
        ) from None


def _check_tpu_reachable(tpu):
    """Fails fast (seconds) where no TPU can be reached, instead of hanging."""
    if tpu in (None, ""):
        raise StrategyError(
            "--strategy=tpu needs --tpu: a Cloud TPU name, a grpc://host:port address, or "
            "'local' for a TPU VM"
        )
    if tpu == "local":
        # A TPU VM exposes its chips as local devices; there is nothing to dial.
        if not os.path.exists("/dev/accel0") and not os.path.exists("/dev/vfio"):
            raise StrategyError("--tpu=local but this machine has no TPU chips (/dev/accel*)")
        return
    if tpu.startswith("grpc://"):
        parsed = urllib.parse.urlparse(tpu)
        host, port = parsed.hostname, parsed.port
        if not host or not port:
            raise StrategyError(f"--tpu={tpu}: expected grpc://host:port")
        try:
            with socket.create_connection((host, port), timeout=TPU_CONNECT_TIMEOUT_S):
                pass
        except OSError as e:
            raise StrategyError(f"no TPU reachable at {tpu}: {e}") from None
        return
    # A Cloud TPU name is resolved through the GCE metadata server.
    try:
        with socket.create_connection(("metadata.google.internal", 80), timeout=2.0):
            pass
    except OSError:
        raise StrategyError(
            f"cannot resolve TPU {tpu!r}: not on Google Cloud (metadata server unreachable); "
            "pass --tpu=grpc://host:port or run on a TPU VM with --tpu=local"
        ) from None


def _tpu_strategy(tpu):
    tpu = tpu or os.environ.get("TPU_NAME")
    _check_tpu_reachable(tpu)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
        raise StrategyError(f"cannot initialise TPU {tpu!r}: {e}") from None


def get_strategy(name="default", tpu=None, num_gpus=None, cpu_devices=None):
    """Builds the `tf.distribute.Strategy` called `name`.

    Args:
        name: one of `STRATEGIES`.
        tpu: for `tpu`: a Cloud TPU name, `grpc://host:port`, or `local`.
        num_gpus: for `mirrored`/`one_device`: use the first N GPUs (default: all).
        cpu_devices: split the host CPU into N logical devices first; `mirrored`
            then replicates over them when there is no GPU.

    Raises:
        StrategyError: unknown name, or the hardware/cluster is not there. For
            `tpu` this happens within seconds when no TPU is reachable.
    """
    if name not in STRATEGIES:
        raise StrategyError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")
    if cpu_devices is not None:
        configure_cpu_devices(cpu_devices)
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one_device":
        gpus = _gpus(num_gpus)
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")
    if name == "mirrored":
        gpus = _gpus(num_gpus)
        if gpus:
            devices = [d.name for d in gpus]
        else:
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker_mirrored":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    return _tpu_strategy(tpu)


def is_chief(strategy):
    """True on the worker that writes checkpoints, logs and summaries."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in (resolver.cluster_spec().as_dict() or {})
    return task_type == "worker" and task_id == 0 and not has_chief


def worker_id(strategy):
    """The task index of this worker (0 outside multi-worker training)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or resolver.task_id is None:
        return 0
    return int(resolver.task_id)


def local_value(strategy, value):
    """The first replica's copy of a (replica-identical) value."""
    return strategy.experimental_local_results(value)[0]
