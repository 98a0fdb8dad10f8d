"""Learning-rate schedule, masked loss/accuracy and the tutorial's optimizer.

Tutorial: "Training" — "Set up the optimizer", "Set up the loss and metrics".
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tftransformer.embedding import as_int


def _as_number(value, name):
    """A Python int or float from a number, numpy scalar or scalar tensor (kept as given)."""
    try:
        number = np.asarray(value).item()
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a number, got {value!r}") from error
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return number


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
        # Deviation from tutorial: numpy/tensor scalars become Python numbers, so that
        # `get_config` serializes; the value is kept as given (4000.5 stays 4000.5).
        self.d_model = as_int(d_model, "d_model")
        self.warmup_steps = _as_number(warmup_steps, "warmup_steps")

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
    # Deviation from tutorial: the logits are cast to float32 (a no-op in float32), so that
    # the loss stays float32 under mixed precision.
    loss = keras.losses.sparse_categorical_crossentropy(
        label, ops.cast(pred, "float32"), from_logits=True
    )  # (batch, seq)
    return ops.sum(loss * mask) / count


def _global_count(count):
    """`count` summed over all replicas when training under a `tf.distribute` strategy."""
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return count
    total = context.all_reduce(tf.distribute.ReduceOp.SUM, tf.stop_gradient(count))
    return ops.maximum(total, 1.0)


@keras.saving.register_keras_serializable(package="tftransformer")
class MaskedLoss(keras.losses.Loss):
    """`masked_loss` with optional label smoothing, exact under `tf.distribute`.

    Deviation from tutorial (used with label smoothing, which `train` now does by
    default (0.1), or a multi-replica strategy; otherwise training uses `masked_loss`):

    - Label smoothing as in the paper (eps_ls = 0.1 there): the target
      distribution is `(1 - eps) * one_hot + eps / vocab`, so the per-token
      loss is `(1 - eps) * nll + eps * mean_over_vocab(-log_softmax)`. Pad
      labels (0) are still masked out.
    - The mean is over the non-pad tokens of the *global* batch. Under a
      `tf.distribute` strategy Keras computes the loss per replica, leaves a
      scalar loss unscaled and sums the replicas' gradients, so the tutorial's
      loss would give the sum of per-replica means (about R times the
      gradient, weighted per replica). Here each replica returns its token sum
      over the global token count (all-reduced); the summed gradients are
      then exactly one device's gradients for the same global batch.

    Args:
        label_smoothing: eps in [0, 1); default 0 (no smoothing).
    """

    # Deviation from tutorial (train's default; --recipe tutorial: off): label smoothing and
    # a global-batch token mean.
    def __init__(self, *, label_smoothing=0.0, name="masked_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        label_smoothing = float(label_smoothing)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        mask, count = _real_tokens(y_true)
        logits = ops.cast(y_pred, "float32")  # (batch, seq, vocab)
        nll = keras.losses.sparse_categorical_crossentropy(
            y_true, logits, from_logits=True
        )  # (batch, seq)
        if self.label_smoothing:
            uniform = -ops.mean(ops.log_softmax(logits, axis=-1), axis=-1)  # (batch, seq)
            nll = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        return ops.sum(nll * mask) / _global_count(count)

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing)
        return config


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
