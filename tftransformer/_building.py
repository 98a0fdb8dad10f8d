"""Small helpers shared by the layers and models: building them at the right time."""


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
