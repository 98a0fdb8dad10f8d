"""Small helpers shared by the layers and models: building them at the right time.

This is the one module that touches private Keras members (`_maybe_symbolic_build`,
`_symbolic_build`, `_distribute_strategy`): `BuiltBeforeTracing` and
`fit_under_multiworker`. Tests fail when either stops being needed
(`tests/test_building.py`, `tests/test_distribute.py`) or when the hooks change.
"""

import tensorflow as tf


def build_once(layer, *shapes):
    """`layer.build(*shapes)` unless it is already built.

    A sub-layer may have been built by calling it directly (e.g.
    `transformer.encoder(ids)` before `transformer(...)`); building twice
    would try to create its weights again.
    """
    if not layer.built:
        layer.build(*shapes)


class BuiltBeforeTracing:
    """Mixin for `keras.Model` subclasses: everything is built before `fit` traces.

    On the TensorFlow backend without a distribution strategy, Keras builds
    whatever is still unbuilt (layers, optimizer slots, compiled metrics and loss)
    inside the first traced training step. A `tf.function` whose first trace
    creates variables is traced a second time, and creating and lifting the
    variables from inside the trace is slow too: a 2-layer tiny Transformer's
    first `fit` took 26 s, 21 s of it tracing. Keras' own path for the other
    backends (and for TensorFlow under a strategy), `_symbolic_build`, builds
    all of it from the data's shapes first; run here from the dataset's element
    spec (no batch is read for it), that first `fit` took 13 s, 7 s tracing.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is not None or (iterator is None and data_batch is None):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)
            return
        if data_batch is None:
            data_batch = iterator.data_adapter.get_tf_dataset().element_spec
        self._symbolic_build(data_batch=data_batch)


# The private Keras hooks `fit_under_multiworker` relies on (tests check they still exist).
KERAS_HOOKS_PATCHED = ("_symbolic_build", "_maybe_symbolic_build", "train_step", "test_step")


def fit_under_multiworker(model, local_batch) -> None:
    """Prepare `model` (compiled, inside the strategy's scope) for `fit` under
    `MultiWorkerMirroredStrategy`, working around two Keras 3 (3.15) failures there.

    1. Before training, Keras builds the compiled loss and metrics from one
       batch of the *distributed* iterator, averaged with `strategy.reduce`,
       which the multi-worker strategy cannot do for per-replica inputs: here
       that build is done once from one local batch, and Keras' is skipped.
    2. After each step Keras reduces the logs across workers with
       `strategy.reduce("MEAN", value, axis=0)`, which fails for the scalar
       loss and metrics: here the steps return them as shape `(1,)`, which
       that reduction turns back into the (same) scalar.
    """
    model._symbolic_build(data_batch=local_batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None

    def vector_logs(step):
        def wrapped(data):
            return {key: tf.reshape(value, [1]) for key, value in step(data).items()}

        return wrapped

    model.train_step = vector_logs(model.train_step)
    model.test_step = vector_logs(model.test_step)
