"""One harness for every public layer, in the spirit of keras-hub's run_layer_test.

`run_layer_test` checks, for a layer class and example inputs:
  1. config round trip (`from_config(get_config())`) and registered serialization;
  2. `build` from shapes alone creates every weight a real call needs;
  3. a symbolic call (functional `keras.Input`s) gives the expected output shape;
  4. an eager call gives the expected output shape and finite values;
  5. one `fit` step through a functional model changes the weights.
"""

from __future__ import annotations

import keras
import numpy as np


def _as_dict(input_data):
    return input_data if isinstance(input_data, dict) else {None: input_data}


def _call(layer, inputs, call_kwargs):
    if None in inputs:
        return layer(inputs[None], **call_kwargs)
    return layer(**inputs, **call_kwargs)


def run_layer_test(
    layer_cls,
    init_kwargs,
    input_data,
    expected_output_shape,
    call_kwargs=None,
    expect_weights=True,
):
    call_kwargs = dict(call_kwargs or {})
    inputs = _as_dict(input_data)

    # 1. Config round trip and registration.
    layer = layer_cls(**init_kwargs)
    config = layer.get_config()
    assert layer_cls.from_config(config).get_config() == config
    assert keras.saving.get_registered_name(layer_cls) == f"tftransformer>{layer_cls.__name__}"
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(revived) is layer_cls and revived.get_config() == config

    # 2. Build from shapes creates all weights.
    built = layer_cls(**init_kwargs)
    shapes = {name: tuple(value.shape) for name, value in inputs.items()}
    if None in shapes:
        built.build(shapes[None])
    else:
        built.build(**{f"{name}_shape": shape for name, shape in shapes.items()})
    assert built.built
    n_built = len(built.weights)
    if expect_weights:
        assert n_built > 0
    _call(built, inputs, {**call_kwargs, "training": False})
    assert len(built.weights) == n_built, "call() created weights that build() missed"

    # 3. Symbolic call.
    symbolic = {
        name: keras.Input(shape=value.shape[1:], dtype=str(value.dtype), name=name)
        for name, value in inputs.items()
    }
    sym_layer = layer_cls(**init_kwargs)
    sym_out = _call(sym_layer, symbolic, call_kwargs)
    assert tuple(sym_out.shape) == (None, *expected_output_shape[1:])

    # 4. Eager call.
    eager_layer = layer_cls(**init_kwargs)
    out = _call(eager_layer, inputs, {**call_kwargs, "training": False})
    assert tuple(out.shape) == tuple(expected_output_shape)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(out)))

    # 5. One fit step through a functional model.
    model = keras.Model(list(symbolic.values()), sym_out)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    target = np.random.default_rng(0).normal(size=expected_output_shape).astype("float32")
    history = model.fit(list(inputs.values()), target, epochs=1, batch_size=len(target), verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    if expect_weights:
        assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    return out
