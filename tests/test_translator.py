import keras
import numpy as np
import pytest
import tensorflow as tf
from decisive import MARGIN, greedy_margin, target_ids, text_ids

from tftransformer import ExportTranslator, ServingTranslator, Transformer
from tftransformer.translator import Translator, make_translate_fn, print_translation


@pytest.fixture(scope="module")
def tiny_translator(tokenizers):
    keras.utils.set_random_seed(7)
    model = Transformer(
        num_layers=1,
        d_model=16,
        num_heads=2,
        dff=32,
        input_vocab_size=tokenizers.pt.get_vocab_size(),
        target_vocab_size=tokenizers.en.get_vocab_size(),
    )
    return Translator(tokenizers, model, max_input_tokens=12)


def test_call_returns_text_tokens_and_attention(tiny_translator):
    text, tokens, attention = tiny_translator(
        tf.constant("este é o primeiro livro que eu fiz."), max_length=6
    )
    assert text.dtype == tf.string and text.shape == ()
    tokens = [t.decode() for t in tokens.numpy()]
    assert tokens[0] == "[START]" and 2 <= len(tokens) <= 7
    in_tokens = tiny_translator.tokenizers.pt.tokenize(["este é o primeiro livro que eu fiz."])
    # (batch, heads, output tokens without [START], input tokens)
    assert attention.shape == (1, 2, len(tokens) - 1, in_tokens.bounding_shape()[1])


def test_traced_equals_eager(tiny_translator):
    text = "os meus vizinhos ouviram sobre esta ideia."
    eager, pieces, _ = tiny_translator(tf.constant(text), max_length=5)
    traced = make_translate_fn(tiny_translator, max_length=5)(tf.constant(text)).numpy()
    # Graph and eager may round differently; equal tokens are guaranteed without near-ties.
    tokenizers, model = tiny_translator.tokenizers, tiny_translator.transformer
    ids = target_ids(tokenizers, [p.decode() for p in pieces.numpy()])
    context = text_ids(tokenizers, text, tiny_translator.max_input_tokens)
    assert greedy_margin(model, context, ids) > MARGIN  # a decisive model
    assert eager.numpy() == traced


def test_long_input_is_trimmed_and_empty_input_works(tiny_translator):
    long = tf.constant(" ".join(["palavra"] * 3000))  # past the 2048 positions
    _text, _tokens, attention = tiny_translator(long, max_length=2)
    assert attention.shape[-1] == 12
    text, tokens, _ = tiny_translator(tf.constant(""), max_length=2)
    assert text.dtype == tf.string and tokens.shape[0] >= 2


def test_print_translation_format(capsys):
    print_translation("oi", tf.constant("hi"), "hello")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{'Input:':15s}: oi",
        f"{'Prediction':15s}: hi",
        f"{'Ground truth':15s}: hello",
    ]
    np.testing.assert_equal(len(lines), 3)


class NotebookTranslator(tf.Module):
    """The notebook's `Translator` interface: tokenizers, transformer, `__call__` only
    (no `max_input_tokens`)."""

    def __init__(self, tokenizers, transformer):
        super().__init__()
        self.tokenizers = tokenizers
        self.transformer = transformer

    def __call__(self, sentence, max_length=128):
        return Translator(self.tokenizers, self.transformer)(sentence, max_length=max_length)


def test_export_accepts_the_notebooks_own_translator(tiny_translator):
    notebook = NotebookTranslator(tiny_translator.tokenizers, tiny_translator.transformer)
    exported = ExportTranslator(notebook, max_length=3)
    text = exported(tf.constant("bom dia"))
    assert text.dtype == tf.string and text.shape == ()
    serving = ServingTranslator(notebook, max_length=3)
    batch = serving.translate(tf.constant(["bom dia", ""]))["translations"]
    assert batch.shape == (2,)
    assert serving.fast.max_input_tokens == 128  # MAX_TOKENS, as the notebook trims none


def test_plot_functions_are_at_the_top_level():
    import tftransformer as tt
    from tftransformer import plotting

    assert tt.plot_attention_head is plotting.plot_attention_head
    assert tt.plot_attention_weights is plotting.plot_attention_weights
