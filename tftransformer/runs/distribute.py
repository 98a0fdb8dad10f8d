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


# The private Keras hooks `prepare_fit` relies on (tests check they still exist).
KERAS_HOOKS_PATCHED = ("_symbolic_build", "_maybe_symbolic_build", "train_step", "test_step")


def prepare_fit(model, strategy, dataset) -> None:
    """Work around two Keras 3 (3.15) failures of `fit` under `MultiWorkerMirroredStrategy`.

    1. Before training, Keras builds the compiled loss and metrics from one
       batch of the *distributed* iterator, averaged with `strategy.reduce`,
       which the multi-worker strategy cannot do for per-replica inputs: here
       that build is done once from one local batch, and Keras' is skipped.
    2. After each step Keras reduces the logs across workers with
       `strategy.reduce("MEAN", value, axis=0)`, which fails for the scalar
       loss and metrics: here the steps return them as shape `(1,)`, which
       that reduction turns back into the (same) scalar.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return
    local_batch = next(iter(dataset.take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=local_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    def vector_logs(step):
        def wrapped(data):
            return {key: tf.reshape(value, [1]) for key, value in step(data).items()}

        return wrapped

    model.train_step = vector_logs(model.train_step)
    model.test_step = vector_logs(model.test_step)
