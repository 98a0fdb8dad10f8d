"""The collapse guard: a run that collapses or diverges is named and stopped, never silent.

A post-norm Transformer driven by too high a learning rate can collapse: it
predicts the most frequent piece everywhere, validation accuracy falls to the
"unigram level" (what always predicting that piece would score), and without a
guard training goes on for many epochs writing nothing. `CollapseGuard` watches
three signs and fires on the first one seen:

- **accuracy**: validation masked accuracy falls to at most `UNIGRAM_MARGIN` x
  the unigram level after having been at least `HEALTHY_MARGIN` x above it;
- **loss**: both the training and the validation loss rose at each of the last
  `RISING_EVALUATIONS` evaluations (over-fitting raises only the validation
  loss, divergence raises both);
- **gradient norm**: the global gradient norm of one step is not finite, or is
  over `EXPLODE_FACTOR` x the median of the last `NORM_WINDOW` steps (read from
  `NormTrackingAdam`, after `NORM_WARMUP` steps).

Firing prints one line (what, at which optimizer step), stops `fit`, and keeps
the epoch it fired in out of the backups; `train_run` then ends with a
`RunError` (exit status 2) naming a lower `--peak-rate` to rerun with, which
resumes from the last good backup. Stopping is chosen over restarting on its
own so that the user decides, and no hidden second run eats the budget.
"""

from __future__ import annotations

import collections

import keras
import numpy as np
import tensorflow as tf

UNIGRAM_MARGIN = 1.2
HEALTHY_MARGIN = 1.5
RISING_EVALUATIONS = 3
EXPLODE_FACTOR = 25.0
NORM_WINDOW = 50
NORM_WARMUP = 20


@keras.saving.register_keras_serializable(package="tftransformer")
class NormTrackingAdam(keras.optimizers.Adam):
    """Keras' `Adam`, which also keeps the global norm of the last step's gradients.

    Deviation from tutorial: the updates are Adam's exactly; `gradient_norm`
    (a variable outside the optimizer's saved state) is what `CollapseGuard`
    reads.
    """

    def build(self, variables):
        super().build(variables)
        # Not a Keras variable, so not in `self.variables`: weights files and backups keep
        # the layout of plain Adam's.
        self.gradient_norm = tf.Variable(
            0.0, trainable=False, name="gradient_norm",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )  # fmt: skip

    def apply(self, grads, trainable_variables=None):
        squares = [tf.reduce_sum(tf.square(tf.cast(g, "float32"))) for g in grads if g is not None]
        if squares and getattr(self, "gradient_norm", None) is not None:
            self.gradient_norm.assign(tf.sqrt(tf.add_n(squares)))
        return super().apply(grads, trainable_variables)


def unigram_accuracy(batches) -> float:
    """The masked accuracy of always predicting the most frequent label in `batches`."""
    counts = collections.Counter()
    for _inputs, labels in batches:
        ids = np.asarray(labels).ravel()
        counts.update(ids[ids != 0].tolist())
    total = sum(counts.values())
    return counts.most_common(1)[0][1] / total if total else 0.0


class CollapseGuard(keras.callbacks.Callback):
    """Names and stops a collapsing or diverging run (see the module docstring).

    `fired` is None, or the line that says what happened at which step.
    `history` (the run's earlier epochs) lets a resumed run keep its trend.
    """

    def __init__(self, unigram: float, history=None, log=print):
        super().__init__()
        self.unigram = unigram
        self.log = log
        self.fired = None
        history = history or {}
        self.best_accuracy = max(history.get("val_masked_accuracy", []), default=0.0)
        self.losses = list(zip(history.get("loss", []), history.get("val_loss", []),
                               strict=False))  # fmt: skip
        self.norms = collections.deque(maxlen=NORM_WINDOW)

    def _fire(self, what):
        step = int(self.model.optimizer.iterations.numpy())
        self.fired = f"training collapsed: {what} at optimizer step {step}"
        self.log(self.fired)
        self.model.stop_training = True

    def check_norm(self, norm: float):
        """The explosion line for this step's gradient norm, or None."""
        if not np.isfinite(norm):
            return f"the gradient norm became {norm}"
        if len(self.norms) >= NORM_WARMUP:
            median = float(np.median(self.norms))
            if median > 0 and norm > EXPLODE_FACTOR * median:
                return (f"the gradient norm exploded to {norm:.3g} ({norm / median:.0f}x the "
                        f"median {median:.3g} of the last {len(self.norms)} steps)")  # fmt: skip
        self.norms.append(norm)
        return None

    def on_train_batch_end(self, batch, logs=None):
        norm = getattr(self.model.optimizer, "gradient_norm", None)
        if norm is None or self.fired:
            return
        what = self.check_norm(float(norm.numpy()))
        if what:
            self._fire(what)

    def check_epoch(self, logs) -> str | None:
        """The collapse line for an epoch's logs (loss, val_loss, val_masked_accuracy), or None."""
        accuracy = logs.get("val_masked_accuracy")
        if accuracy is not None:
            if (self.best_accuracy >= HEALTHY_MARGIN * self.unigram
                    and accuracy <= UNIGRAM_MARGIN * self.unigram):  # fmt: skip
                return (f"validation accuracy fell to {accuracy:.3f} (best "
                        f"{self.best_accuracy:.3f}; always predicting the most frequent piece "
                        f"scores {self.unigram:.3f})")  # fmt: skip
            self.best_accuracy = max(self.best_accuracy, accuracy)
        if "loss" in logs and "val_loss" in logs:
            self.losses.append((logs["loss"], logs["val_loss"]))
            recent = self.losses[-(RISING_EVALUATIONS + 1):]
            if len(recent) == RISING_EVALUATIONS + 1 and all(
                b[0] > a[0] and b[1] > a[1] for a, b in zip(recent, recent[1:], strict=False)
            ):
                return (f"training and validation loss rose at each of the last "
                        f"{RISING_EVALUATIONS} evaluations (to {recent[-1][0]:.3f} / "
                        f"{recent[-1][1]:.3f})")  # fmt: skip
        return None

    def on_epoch_end(self, epoch, logs=None):
        if self.fired:
            return
        what = self.check_epoch(logs or {})
        if what:
            self._fire(what)
