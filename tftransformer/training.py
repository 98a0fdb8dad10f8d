"""Learning-rate schedule, masked loss/accuracy and the tutorial's optimizer.

Tutorial: "Training" — "Set up the optimizer", "Set up the loss and metrics".
"""

from __future__ import annotations

import keras
from keras import ops

from tftransformer.embedding import as_int


@keras.saving.register_keras_serializable(package="tftransformer")
class CustomSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`lr = d_model**-0.5 * min(step**-0.5, step * warmup_steps**-1.5)`.

    Tutorial: "Set up the optimizer" (the paper's schedule: linear warm-up,
    then inverse square-root decay).

    Args:
        d_model: model width.
        warmup_steps: default 4000.
    """

    def __init__(self, d_model, warmup_steps=4000):
        super().__init__()
        self.d_model = as_int(d_model, "d_model")
        self.warmup_steps = as_int(warmup_steps, "warmup_steps")

    def __call__(self, step):
        step = ops.cast(step, dtype="float32")
        arg1 = ops.rsqrt(step)
        arg2 = step * (self.warmup_steps**-1.5)
        return ops.rsqrt(ops.cast(self.d_model, "float32")) * ops.minimum(arg1, arg2)

    # Deviation from tutorial: the tutorial's schedule has no get_config, so a
    # compiled model cannot be saved on Keras 3.
    def get_config(self):
        return {"d_model": self.d_model, "warmup_steps": self.warmup_steps}


def tutorial_optimizer(d_model, warmup_steps=4000):
    """`Adam(CustomSchedule(d_model), beta_1=0.9, beta_2=0.98, epsilon=1e-9)`.

    Tutorial: "Set up the optimizer".
    """
    return keras.optimizers.Adam(
        CustomSchedule(d_model, warmup_steps), beta_1=0.9, beta_2=0.98, epsilon=1e-9
    )


def _real_tokens(label):
    # Deviation from tutorial: the denominator is at least 1, so a batch made
    # only of padding gives 0 instead of NaN.
    mask = ops.cast(ops.not_equal(label, 0), "float32")
    return mask, ops.maximum(ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="tftransformer")
def masked_loss(label, pred):
    """Mean sparse cross-entropy (from logits) over non-pad labels (label != 0).

    Tutorial: "Set up the loss and metrics".
    """
    mask, count = _real_tokens(label)
    loss = keras.losses.sparse_categorical_crossentropy(
        label, ops.cast(pred, "float32"), from_logits=True
    )  # (batch, seq)
    return ops.sum(loss * mask) / count


@keras.saving.register_keras_serializable(package="tftransformer")
def masked_accuracy(label, pred):
    """Share of non-pad labels whose argmax prediction is right.

    Tutorial: "Set up the loss and metrics".
    """
    mask, count = _real_tokens(label)
    pred = ops.argmax(pred, axis=2)
    label = ops.cast(label, pred.dtype)
    match = ops.cast(ops.equal(label, pred), "float32") * mask
    return ops.sum(match) / count
