import numpy as np
import tensorflow as tf

from tftransformer import plotting


def test_attention_weights_grid_has_2x4_labelled_heads(tokenizers, tmp_path):
    sentence = "este é o primeiro livro que eu fiz."
    in_len = int(tokenizers.pt.tokenize([sentence]).bounding_shape()[1])
    translated = tf.constant([b"[START]", b"this", b"is", b"[END]"])
    heads = np.random.default_rng(0).random((8, 3, in_len))
    fig = plotting.plot_attention_weights(sentence, translated, heads, tokenizers)
    axes = fig.get_axes()
    assert len(axes) == 8
    assert [ax.get_xlabel() for ax in axes] == [f"Head {h}" for h in range(1, 9)]
    # Rows: the translated tokens without [START]; columns: the input word pieces.
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["this", "is", "[END]"]
    assert len(axes[0].get_xticklabels()) == in_len
    plotting.save_figure(fig, tmp_path / "heads.png")
    assert (tmp_path / "heads.png").read_bytes()[:4] == b"\x89PNG"


def test_schedule_and_encoding_plots(tmp_path):
    from tftransformer import CustomSchedule, positional_encoding

    plotting.plot_learning_rate(CustomSchedule(128), tmp_path / "lr.png", steps=100)
    plotting.plot_positional_encoding(positional_encoding(64, 16), tmp_path / "pe.png")
    plotting.plot_history({"loss": [3.0, 2.0], "val_loss": [3.1, 2.5]}, tmp_path / "h.png")
    for name in ("lr.png", "pe.png", "h.png"):
        assert (tmp_path / name).stat().st_size > 1000
    assert not list(tmp_path.glob(".*"))  # temp files renamed away
