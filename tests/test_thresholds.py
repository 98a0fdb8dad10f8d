"""`--threshold auto`: per-label thresholds that maximize validation micro-F1."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tftransformer.classification.metrics import f1_scores
from tftransformer.classification.thresholds import choose_thresholds, micro_f1


def test_a_shy_label_gets_a_lower_threshold():
    # Label 0 is right whenever its score passes 0.3 but never reaches 0.5.
    truth = np.array([[1, 1], [1, 0], [0, 1], [0, 0]], bool)
    scores = np.array([[0.40, 0.9], [0.35, 0.1], [0.10, 0.8], [0.05, 0.2]])
    assert micro_f1(truth, scores >= 0.5) == pytest.approx(2 * 2 / (2 * 2 + 2))
    thresholds = choose_thresholds(truth, scores)
    assert 0.10 < thresholds[0] < 0.35  # between the best negative and the worst positive
    assert thresholds[1] == 0.5  # already perfect: unchanged
    assert micro_f1(truth, scores >= np.array(thresholds)) == 1.0


def test_micro_f1_agrees_with_keras_metrics():
    rng = np.random.default_rng(0)
    truth, decided = rng.random((40, 5)) < 0.3, rng.random((40, 5)) < 0.4
    assert micro_f1(truth, decided) == pytest.approx(f1_scores(truth, decided)["micro_f1"],
                                                     abs=1e-6)  # fmt: skip


def test_edge_cases():
    assert choose_thresholds(np.zeros((0, 3), bool), np.zeros((0, 3))) == [0.5] * 3
    # A label never true: predicting it never helps, so its threshold rises above every score.
    truth = np.array([[0, 1], [0, 1], [0, 0]], bool)
    scores = np.array([[0.7, 0.6], [0.2, 0.7], [0.9, 0.1]])
    thresholds = choose_thresholds(truth, scores)
    assert thresholds[0] > 0.9 and thresholds[0] < 1.0
    assert np.all((scores >= thresholds)[:, 0] == 0)
    with pytest.raises(ValueError, match="labels"):
        choose_thresholds(truth, scores[:, :1])


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    data=st.integers(1, 30).flatmap(
        lambda n: st.tuples(
            arrays(bool, (n, 3)),
            # float32 values, as the models' scores are, ties included.
            arrays(np.float32, (n, 3), elements=st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.5001,
                                                                 0.7, 0.99, 1.0])),
        )
    )
)
def test_auto_never_lowers_micro_f1_below_one_half(data):
    truth, scores = data
    thresholds = choose_thresholds(truth, scores)
    assert all(0 < t < 1 for t in thresholds)
    # Decided as the models decide: float32 scores against float32 thresholds.
    decided = scores >= np.asarray(thresholds, np.float32)
    assert micro_f1(truth, decided) >= micro_f1(truth, scores >= np.float32(0.5))


def test_a_cut_between_neighbouring_float32_scores_keeps_them_apart():
    low = np.float32(0.3)
    high = np.nextafter(low, np.float32(1))  # no float32 lies between the two
    truth = np.array([[1], [0]], bool)
    scores = np.array([[high], [low]], np.float32)
    thresholds = choose_thresholds(truth, scores)
    decided = scores >= np.asarray(thresholds, np.float32)
    assert decided[:, 0].tolist() == [True, False]
