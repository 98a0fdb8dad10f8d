"""`_building.BuiltBeforeTracing`: the one place that overrides a private Keras method.

The test below fails when the override becomes unnecessary (Keras on TensorFlow building
before the first trace by itself) or stops working (the private hooks renamed).
"""

import keras
import numpy as np
import tensorflow as tf

from tftransformer._building import BuiltBeforeTracing


class Counted(keras.Model):
    traces = 0

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)

    def train_step(self, data):
        type(self).traces += 1  # Python runs once per trace of the training step
        return super().train_step(data)


class Built(BuiltBeforeTracing, Counted):
    traces = 0


def _fit(cls):
    model = cls()
    model.compile(optimizer="adam", loss="mse")
    x, y = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
    model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(2), epochs=2, verbose=0)
    return cls.traces


def test_keras_still_traces_the_first_step_twice_and_the_override_once():
    assert _fit(Counted) == 2, (
        "Keras on TensorFlow now traces the first training step once by itself: "
        "BuiltBeforeTracing (tftransformer/_building.py) is no longer needed"
    )
    assert _fit(Built) == 1, "BuiltBeforeTracing no longer builds before the first trace"
