import pytest

from tftransformer import TransformerConfig


def test_defaults_are_the_tutorial_hyperparameters():
    config = TransformerConfig()
    assert config.to_dict() == dict(
        num_layers=4, d_model=128, dff=512, num_heads=8, dropout_rate=0.1
    )


def test_dict_round_trip():
    config = TransformerConfig(num_layers=2, d_model=32, dff=64, num_heads=4, dropout_rate=0.0)
    assert TransformerConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "field, value",
    [
        ("num_layers", 0),
        ("num_layers", "4"),
        ("num_layers", True),
        ("d_model", 127),
        ("dff", 2.5),
        ("num_heads", -1),
        ("dropout_rate", 1.0),
        ("dropout_rate", "0.1"),
    ],
)
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"TransformerConfig.{field}"):
        TransformerConfig(**{field: value})


def test_unknown_keys_are_named():
    with pytest.raises(ValueError, match="d_modle"):
        TransformerConfig.from_dict({"d_modle": 128})
