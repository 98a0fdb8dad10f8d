"""Multi-label decision metrics: micro/macro F1, precision and recall, from Keras metrics."""

from __future__ import annotations

import keras
import numpy as np


def f1_scores(truth, predicted) -> dict:
    """Micro and macro F1, micro precision and recall for boolean (n, labels) arrays.

    Computed by Keras' `F1Score`, `Precision` and `Recall` metrics on the 0/1
    decisions. A label with no positive in `truth` and none predicted counts as
    F1 0 in the macro average (as in Keras and scikit-learn's `zero_division=0`).
    """
    truth = np.asarray(truth, "float32")
    predicted = np.asarray(predicted, "float32")
    if truth.size == 0:
        return {"micro_f1": 0.0, "macro_f1": 0.0, "precision": 0.0, "recall": 0.0}
    metrics = {
        "micro_f1": keras.metrics.F1Score(average="micro", threshold=0.5),
        "macro_f1": keras.metrics.F1Score(average="macro", threshold=0.5),
        "precision": keras.metrics.Precision(thresholds=0.5),
        "recall": keras.metrics.Recall(thresholds=0.5),
    }
    results = {}
    for name, metric in metrics.items():
        metric.update_state(truth, predicted)
        results[name] = float(metric.result())
    return results
