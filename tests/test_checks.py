"""The one number validator: what it accepts, and the one way its errors read."""

import numpy as np
import pytest

from tftransformer._checks import positive_int, positive_number
from tftransformer._files import RunError


@pytest.mark.parametrize("value", [1, 7, np.int32(3), np.int64(10**9)])
def test_positive_int_accepts_python_and_numpy_integers(value):
    assert positive_int(value, "n") == int(value)


@pytest.mark.parametrize("value", [0, -1, True, 1.0, "2", None, np.float32(2)])
def test_positive_int_names_the_value(value):
    with pytest.raises(ValueError, match=rf"^n must be a positive integer, got {value!r:.5}"):
        positive_int(value, "n")


def test_none_and_error_types():
    assert positive_int(None, "n", none_ok=True) is None
    with pytest.raises(RunError, match=r"^--x must be a positive integer or null, got 0$"):
        positive_int(0, "--x", error=RunError, none_ok=True)
    assert positive_number(0.5, "r", below=1) == 0.5
    for bad in (0, 1, 2.5, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match=r"^r must be a number in \(0, 1\), got "):
            positive_number(bad, "r", below=1)
    with pytest.raises(ValueError, match=r"^t must be a positive number or null, got -1$"):
        positive_number(-1, "t", none_ok=True)
