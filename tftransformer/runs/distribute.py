"""Training on several devices or machines with TensorFlow's `tf.distribute`.

Not in the tutorial, which trains on one device. `--strategy`:

- `default`: no distribution (the tutorial).
- `mirrored`: `tf.distribute.MirroredStrategy` over this machine's GPUs, or
  over its logical CPU devices when it has no GPU (one CPU unless the process
  split it with `tf.config.set_logical_device_configuration`).
- `multiworker`: `tf.distribute.MultiWorkerMirroredStrategy`; the cluster and
  this process's role come from the `TF_CONFIG` environment variable.

The batch size is the *global* batch: `tf.data` batches are split across the
replicas by Keras (`experimental_distribute_dataset`), and `MaskedLoss`
makes the loss and gradients those of one device on the whole batch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import tensorflow as tf

from tftransformer._building import KERAS_HOOKS_PATCHED, fit_under_multiworker  # noqa: F401
from tftransformer._files import RunError

STRATEGIES = ("default", "mirrored", "multiworker")


def _tf_config() -> dict:
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        raise RunError(
            "--strategy multiworker needs the TF_CONFIG environment variable "
            '(e.g. {"cluster": {"worker": ["host1:port", "host2:port"]}, '
            '"task": {"type": "worker", "index": 0}})'
        )
    try:
        config = json.loads(text)
        workers = config["cluster"]["worker"]
        task = config["task"]
        if not isinstance(workers, list) or not workers or task["type"] != "worker":
            raise ValueError("needs a non-empty cluster.worker list and task.type 'worker'")
        if not 0 <= int(task["index"]) < len(workers):
            raise ValueError(f"task.index {task['index']!r} is not a worker of the cluster")
    except (ValueError, KeyError, TypeError) as error:
        raise RunError(f"TF_CONFIG={text!r} is not a usable cluster spec ({error})") from None
    return config


def worker_index(strategy_name: str) -> int:
    """This process's worker index (0, the chief, unless multi-worker)."""
    if strategy_name != "multiworker":
        return 0
    return int(_tf_config()["task"]["index"])


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy named by `--strategy`.

    Create it before any other TensorFlow work in the process: the
    multi-worker strategy configures the collective ops at start-up.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        # Logical CPUs: reduce on one device. The collective all-reduce that
        # MirroredStrategy picks by default packs the dense and the (sparse)
        # embedding gradients together, and fails when replicas' batches differ.
        cpus = tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(
            [d.name for d in cpus], cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if name == "multiworker":
        _tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise RunError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")


def worker_out(out, strategy_name: str) -> Path:
    """Where this process writes its run directory.

    Every worker of a multi-worker run keeps its own copy of the run (backups
    for resuming included, so each can restore itself): the chief (worker 0)
    writes `out`, worker i writes `out/workers/worker-i`. All copies hold the
    same weights, since the strategy keeps the workers in sync.
    """
    index = worker_index(strategy_name)
    return Path(out) if index == 0 else Path(out) / "workers" / f"worker-{index}"


def prepare_fit(model, strategy, dataset) -> None:
    """Work around two Keras 3 (3.15) failures of `fit` under `MultiWorkerMirroredStrategy`
    (`tftransformer._building.fit_under_multiworker`, which says what and how); other
    strategies are left alone."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    local_batch = next(iter(dataset.take(1)))
    with strategy.scope():
        fit_under_multiworker(model, local_batch)
