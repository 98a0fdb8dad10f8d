import pytest

from tftransformer.cli import main


def test_summary_prints_the_tutorial_model(capsys):
    assert main(["summary"]) == 0
    out = capsys.readouterr().out
    assert "10,184,162" in out and "encoder" in out and "decoder" in out


def test_summary_with_other_sizes(capsys):
    args = ["summary", "--num-layers", "1", "--d-model", "8", "--dff", "16", "--num-heads", "2"]
    assert main(args + ["--input-vocab-size", "10", "--target-vocab-size", "12"]) == 0
    assert "Total params" in capsys.readouterr().out


def test_bad_hyperparameter_is_one_line_and_exit_2(capsys):
    assert main(["summary", "--d-model", "7"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "d_model" in err and "7" in err


@pytest.mark.parametrize("argv", [[], ["nonsense"], ["summary", "--num-layers", "x"]])
def test_usage_errors_exit_2(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "error:" in err and err.count("\n") == 0
