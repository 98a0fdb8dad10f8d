"""tf.distribute: MirroredStrategy on 2 logical CPUs; MultiWorkerMirroredStrategy, 2 processes.

Both run in child processes: logical devices and TF_CONFIG must be set before
TensorFlow initialises its devices, and must not leak into the pytest process.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import TINY_MODEL_FLAGS
from fresh_process import python_json

TINY = [*TINY_MODEL_FLAGS, "--warmup-steps", "10", "--max-tokens", "16"]

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tftransformer.config import TransformerConfig
    from tftransformer.runs.distribute import make_strategy
    from tftransformer.runs.train import TrainSettings, build_model, train_run
    from tftransformer.training import masked_loss

    class Vocab:
        def __init__(self, n): self.n = n
        def get_vocab_size(self): return self.n

    class Sizes:
        pt, en = Vocab(37), Vocab(29)

    hp = TransformerConfig(num_layers=1, d_model=16, dff=32, num_heads=2, dropout_rate=0.0)
    # float32 (the suite's rule, tests/conftest.py): the splits compared must not round in bf16.
    settings = TrainSettings(hparams=hp, warmup_steps=10, mixed_precision=None)
    # A global batch of 4 whose rows hold 1, 2, 4 and 8 real target tokens: however
    # it is split in two, the replicas see different token counts.
    rng = np.random.default_rng(0)
    lengths = [1, 2, 4, 8]
    pt = np.zeros((4, 9), "int64"); en = np.zeros((4, 9), "int64")
    for row, n in enumerate(lengths):
        pt[row, : n + 1] = rng.integers(3, 37, n + 1)
        en[row, : n + 1] = rng.integers(3, 29, n + 1)
    labels = en.copy()
    batch = tf.data.Dataset.from_tensors(((pt, en), labels))

    keras.utils.set_random_seed(0)
    reference = build_model(settings, Sizes)
    start = reference.get_weights()

    def one_step(strategy, loss=None):
        model = build_model(settings, Sizes, strategy)
        model.set_weights(start)
        with strategy.scope():  # plain SGD(1): the update is minus the gradient
            model.compile(loss=loss or model.loss, optimizer=keras.optimizers.SGD(1.0))
        history = model.fit(batch, epochs=1, verbose=0)
        grads = [a - b for a, b in zip(start, model.get_weights())]
        return history.history["loss"][0], grads

    mirrored = make_strategy("mirrored")
    one_loss, one_grads = one_step(tf.distribute.get_strategy())
    two_loss, two_grads = one_step(mirrored)
    _naive_loss, naive_grads = one_step(mirrored, loss=masked_loss)
    grad_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one_grads, two_grads))
    naive_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one_grads, naive_grads))
    grad_scale = max(float(np.max(np.abs(a))) for a in one_grads)

    # The whole job: train, then resume for one more epoch, on 2 replicas.
    out = sys.argv[1]
    run = TrainSettings(hparams=hp, epochs=1, batch_size=8, limit=16, warmup_steps=10,
                        max_tokens=16, strategy="mirrored", mixed_precision=None)
    train_run(out, run, verbose=0)
    run.epochs = 2
    model, _tok, history = train_run(out, run, verbose=0)
    print(json.dumps(dict(
        replicas=mirrored.num_replicas_in_sync, one_loss=one_loss, two_loss=two_loss,
        grad_diff=grad_diff, naive_diff=naive_diff, grad_scale=grad_scale,
        epochs=len(history["loss"]), steps=int(model.optimizer.iterations.numpy()),
        losses=history["loss"],
    )))
    """
)


@pytest.mark.slow
def test_mirrored_two_cpus_matches_one_device_and_resumes(tmp_path):
    # A single-process job: no TF_CONFIG.
    got = python_json(MIRRORED_SCRIPT, str(tmp_path / "run"), timeout=300, drop_env=["TF_CONFIG"])
    assert got["replicas"] == 2
    # Same first-step loss and gradients as one device on the same global batch ...
    assert got["two_loss"] == pytest.approx(got["one_loss"], rel=1e-5)
    assert got["grad_scale"] > 1e-3
    assert got["grad_diff"] < 1e-5 * max(1.0, got["grad_scale"])
    # ... which the tutorial's per-replica scalar loss would not give.
    assert got["naive_diff"] > 100 * got["grad_diff"] + 1e-4
    # Training and resuming work: 2 epochs of 2 steps (16 examples, global batch 8).
    assert got["epochs"] == 2 and got["steps"] == 4
    assert all(np.isfinite(got["losses"]))


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _multiworker_train(tmp_path, out, prelude=""):
    """`tftransformer train --strategy multiworker` as two local worker processes.

    `prelude` is Python run in each worker before the CLI. Returns (return codes, logs).
    """
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    flags = ["train", "--strategy", "multiworker", "--out", str(out), "--epochs", "1",
             "--batch-size", "8", "--limit", "16", "--dropout-rate", "0",
             "--mixed-precision", "float32", *TINY]  # fmt: skip
    code = f"{prelude}\nimport sys\nfrom tftransformer.cli import main\nsys.exit(main({flags!r}))"
    children = []
    try:
        for index in range(2):
            config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(config)}
            log = open(tmp_path / f"worker-{index}.log", "w")  # noqa: SIM115
            children.append(subprocess.Popen([sys.executable, "-c", code], stdout=log,
                                             stderr=subprocess.STDOUT, env=env))  # fmt: skip
        deadline = time.monotonic() + 300
        for child in children:
            child.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    logs = [(tmp_path / f"worker-{i}.log").read_text()[-6000:] for i in range(2)]
    return [c.returncode for c in children], logs


@pytest.mark.slow
def test_multiworker_two_processes_train_and_agree(tmp_path):
    from tftransformer.runs.run import Run

    out = tmp_path / "run"
    codes, logs = _multiworker_train(tmp_path, out)
    assert codes == [0, 0], logs
    chief = Run(out).model
    other = Run(out / "workers" / "worker-1").model
    # Both trained 2 steps (16 pairs, global batch 8 = 4 per worker), on different
    # shards of each batch, and hold the same weights (gradients were all-reduced).
    assert int(chief.optimizer.iterations.numpy()) == 2
    assert int(other.optimizer.iterations.numpy()) == 2
    for a, b in zip(chief.get_weights(), other.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    for path in (out, out / "workers" / "worker-1"):
        history = json.loads((path / "history.json").read_text())
        assert len(history["loss"]) == 1 and np.isfinite(history["loss"][0])
    # Only the chief scores the test split; the other worker says so and stops.
    assert "Test BLEU" in logs[0] and "Test BLEU" not in logs[1]
    assert "Worker 1: the chief (worker 0) evaluates the test split" in logs[1]


def test_keras_workaround_still_fits_this_keras():
    """`prepare_fit` patches two private Keras hooks (see its docstring). If a Keras upgrade
    renames them or changes their arguments, the workaround is wrong: fail here, loudly,
    rather than deep inside a multi-worker job. (`test_keras_workaround_is_still_needed`
    checks that it is still needed.)"""
    import inspect

    import keras

    from tftransformer.runs.distribute import KERAS_HOOKS_PATCHED, prepare_fit

    for name in KERAS_HOOKS_PATCHED:
        assert callable(getattr(keras.Model, name, None)), f"keras.Model.{name} is gone"
    assert "data_batch" in inspect.signature(keras.Model._symbolic_build).parameters
    assert set(inspect.signature(keras.Model._maybe_symbolic_build).parameters) >= {
        "iterator",
        "data_batch",
    }
    sentinel = object()
    assert prepare_fit(sentinel, None, None) is None  # other strategies: untouched


@pytest.mark.slow
def test_keras_workaround_is_still_needed(tmp_path):
    """The same two-worker job with `prepare_fit` switched off must still fail on this Keras.

    When a Keras upgrade fixes `fit` under MultiWorkerMirroredStrategy, this test fails:
    the workaround is then unnecessary and should go.
    """
    prelude = "import tftransformer.runs.train as t\nt.prepare_fit = lambda *args: None"
    codes, logs = _multiworker_train(tmp_path, tmp_path / "run", prelude)
    assert codes != [0, 0], "Keras now trains multi-worker without prepare_fit: remove it"
    # ... and for the known reason (Keras builds the loss from a per-replica batch), not
    # another one.
    assert any("PerReplica" in log for log in logs), logs
