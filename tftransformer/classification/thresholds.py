"""Per-label decision thresholds chosen on held-out data (`--threshold auto`).

At 0.5, a multi-label model that is precise but shy (scores for a label rarely
reach 0.5 even when it is right) predicts almost nothing for that label. Here
each label gets its own threshold, chosen on the validation split to maximize
micro-F1 by coordinate ascent: start with every label at 0.5, then, label by
label, move its threshold to the cut that maximizes micro-F1 with the other
labels' decisions held fixed; repeat until no label moves. Every accepted move
raises validation micro-F1, so the result is never below the 0.5 threshold's.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5
# Thresholds stay strictly inside (0, 1), as every model's `threshold` must.
_EPS = 1e-6


def _counts(truth, decided):
    tp = np.sum(truth & decided, axis=0).astype("int64")
    fp = np.sum(~truth & decided, axis=0).astype("int64")
    fn = np.sum(truth & ~decided, axis=0).astype("int64")
    return tp, fp, fn


def micro_f1(truth, decided) -> float:
    """Micro-averaged F1 of boolean (n, labels) decisions (0 when nothing is positive)."""
    tp, fp, fn = (c.sum() for c in _counts(np.asarray(truth, bool), np.asarray(decided, bool)))
    return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0


def _best_cut(label_truth, label_scores, other_tp, other_errors, current):
    """The threshold for one label that maximizes micro-F1, others fixed.

    Candidates: a cut between each pair of neighbouring distinct scores, one
    above every score (predict nothing), and each score itself; all kept
    strictly inside (0, 1).
    Each is scored by the decisions it really makes on float32 scores (a cut
    clipped into (0, 1), or rounded to float32, may not separate what it was
    meant to). Returns (threshold, micro-F1); `current` wins ties, so a label
    only moves for a strict gain.
    """
    distinct = np.unique(label_scores)[::-1]  # descending
    above = np.concatenate([[1.0], distinct])
    below = np.concatenate([distinct, [0.0]])
    # Midpoints first (they generalize best, and argmax keeps the first of equals), then
    # the scores themselves, for neighbours too close for a float32 midpoint.
    cuts = np.clip(np.concatenate([(above + below) / 2, distinct]), _EPS, 1 - _EPS)
    candidates = np.concatenate([[current], cuts]).astype("float32")
    decided = label_scores.astype("float32")[:, None] >= candidates[None, :]  # (n, candidates)
    tp = np.sum(decided & label_truth[:, None], axis=0)
    errors = np.sum(decided != label_truth[:, None], axis=0)  # false positives + negatives
    f1 = 2 * (other_tp + tp) / np.maximum(2 * (other_tp + tp) + other_errors + errors, 1)
    best = int(np.argmax(f1[1:])) + 1
    if f1[best] > f1[0] + 1e-12:
        return float(candidates[best]), float(f1[best])
    return float(current), float(f1[0])


def choose_thresholds(truth, scores, max_rounds=10) -> list[float]:
    """Per-label thresholds for (n, labels) `scores` that maximize micro-F1 on `truth`.

    Coordinate ascent from 0.5 (see the module docstring); never lowers
    micro-F1 below the 0.5 threshold's on the data it is chosen on.
    """
    truth = np.asarray(truth, bool)
    scores = np.asarray(scores, "float64")
    if truth.shape != scores.shape or truth.ndim != 2:
        raise ValueError(f"truth and scores must both be (n, labels), got {truth.shape} and "
                         f"{scores.shape}")  # fmt: skip
    labels = truth.shape[1]
    thresholds = [DEFAULT_THRESHOLD] * labels
    if not len(truth):
        return thresholds
    for _ in range(max_rounds):
        moved = False
        for label in range(labels):
            decided = scores >= np.asarray(thresholds)
            tp, fp, fn = _counts(truth, decided)
            other_tp = tp.sum() - tp[label]
            other_errors = fp.sum() + fn.sum() - fp[label] - fn[label]
            new, _ = _best_cut(truth[:, label], scores[:, label], other_tp, other_errors,
                               thresholds[label])  # fmt: skip
            if new != thresholds[label]:
                thresholds[label], moved = new, True
        if not moved:
            break
    return thresholds
