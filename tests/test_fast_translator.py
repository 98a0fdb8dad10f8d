"""FastTranslator: the cached decoder equals the tutorial's loop; beam search."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TINY, TINY_VOCAB
from decisive import decisive_rows, target_ids

from tftransformer import FastTranslator, Transformer
from tftransformer.corpus import load_corpus
from tftransformer.data import make_batches
from tftransformer.inference.cached_decoder import IncrementalDecoder
from tftransformer.inference.search import length_penalty
from tftransformer.training import masked_accuracy, masked_loss
from tftransformer.translator import Translator

MAX_LENGTH = 24
HELD_OUT = 16


@pytest.fixture(scope="module")
def trained(tokenizers):
    """A small Transformer trained for one epoch on the embedded corpus: decisive enough
    (15 of the 16 held-out rows have no near-tie here; 14 after two epochs on another
    CPU), in half the CI time of two epochs."""
    keras.utils.set_random_seed(3)
    model = Transformer(
        num_layers=2,
        d_model=32,
        num_heads=2,
        dff=64,
        input_vocab_size=tokenizers.pt.get_vocab_size(),
        target_vocab_size=tokenizers.en.get_vocab_size(),
    )
    batches = make_batches(load_corpus("embedded", "train"), tokenizers, seed=0)
    model.compile(keras.optimizers.Adam(3e-3), loss=masked_loss, metrics=[masked_accuracy])
    model.fit(batches, epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def held_out():
    pairs = load_corpus("embedded", "test").take(HELD_OUT).as_numpy_iterator()
    return [pt.decode("utf-8") for pt, _ in pairs]


@pytest.fixture(scope="module")
def tutorial_tokens(tokenizers, trained, held_out):
    """The tutorial `Translator`'s word pieces for each held-out sentence."""
    translator = Translator(tokenizers, trained)
    translate = tf.function(
        lambda s: translator(s, max_length=MAX_LENGTH)[1],
        input_signature=[tf.TensorSpec([], tf.string)],
    )
    return [[t.decode() for t in translate(tf.constant(s)).numpy()] for s in held_out]


@pytest.fixture(scope="module")
def decisive(tokenizers, trained, held_out, tutorial_tokens):
    """Held-out rows whose tutorial greedy path has no near-tied logit (see decisive.py).

    Only on these are token-for-token equalities between decoders guaranteed.
    """
    contexts = tokenizers.pt.tokenize(tf.constant(held_out)).to_tensor().numpy()
    rows = [target_ids(tokenizers, pieces) for pieces in tutorial_tokens]
    chosen = decisive_rows(trained, contexts, rows)
    assert len(chosen) >= HELD_OUT * 3 // 4, f"test model too indecisive: rows {chosen}"
    return chosen


def pieces(tokenizers, ids):
    """Word pieces of one row of ids, up to and including [END] (no padding)."""
    ids = np.asarray(ids)
    end = np.flatnonzero(ids == 3)
    ids = ids[: end[0] + 1] if end.size else ids
    return [t.decode() for t in tokenizers.en.lookup(tf.constant(ids[np.newaxis])).numpy()[0]]


@pytest.mark.parametrize("cache", ["keys_values", "inputs"])
@pytest.mark.parametrize("static", [False, True])
def test_cached_decode_matches_full_decode(static, cache):
    keras.utils.set_random_seed(11)
    model = Transformer(**TINY, **TINY_VOCAB)
    context = tf.constant([[5, 6, 7, 8, 0, 0], [3, 4, 9, 2, 2, 11]], tf.int64)
    # A [PAD] id inside the target is masked as a key, as in the full model.
    target = tf.constant([[2, 5, 6, 0, 7, 8], [2, 9, 9, 9, 1, 3]], tf.int64)
    full = model([context, target], training=False).numpy()  # (2, 6, vocab)
    decoder = IncrementalDecoder(model, static=static, cache=cache)

    @tf.function(jit_compile=static)
    def incremental(context, target):
        state, weights = decoder.start(context, 6), decoder.weights()
        logits = []
        for t in range(6):
            step_logits, state = decoder.step(state, target, tf.constant(t), weights)
            logits.append(step_logits)
        return tf.stack(logits, axis=1)

    np.testing.assert_allclose(incremental(context, target).numpy(), full, atol=1e-5)


# Two corners of the jit x cache square: every one of the four combinations is held to
# the full model's logits in test_cached_decode_matches_full_decode; here each setting of
# each option meets the tutorial's loop once (each case costs a trace and a compile).
@pytest.mark.slow
@pytest.mark.parametrize("jit_compile, cache", [(False, "keys_values"), (True, "inputs")])
def test_cached_greedy_equals_tutorial_translator(
    tokenizers, trained, held_out, tutorial_tokens, decisive, jit_compile, cache
):
    fast = FastTranslator(tokenizers, trained, MAX_LENGTH, jit_compile=jit_compile, cache=cache)
    batched = fast.greedy_ids(held_out)["ids"].numpy()
    assert batched.shape == (HELD_OUT, MAX_LENGTH + 1)
    # Token for token on every row without a near-tie (other rows may flip on float rounding).
    for row in decisive:
        assert pieces(tokenizers, batched[row]) == tutorial_tokens[row], row
    for row in decisive[:6]:
        one = fast.greedy_ids([held_out[row]])["ids"].numpy()[0]
        assert pieces(tokenizers, one) == tutorial_tokens[row], row
    first = decisive[0]
    translator = Translator(tokenizers, trained)
    expected = translator(tf.constant(held_out[first]), max_length=MAX_LENGTH)[0].numpy()
    assert fast.greedy(held_out[first : first + 1]).numpy()[0] == expected


@pytest.mark.slow
@pytest.mark.parametrize("cache, jit_compile", [("keys_values", False), ("inputs", True)])
def test_beam_size_one_is_greedy(tokenizers, trained, held_out, decisive, jit_compile, cache):
    fast = FastTranslator(tokenizers, trained, MAX_LENGTH, jit_compile=jit_compile, cache=cache)
    greedy = fast.greedy_ids(held_out)
    beam = fast.beam_search_ids(held_out, beam_size=1, alpha=0.6)
    # Beam and greedy batch their logits differently: equal tokens where no near-tie.
    np.testing.assert_array_equal(beam["ids"].numpy()[decisive, 0], greedy["ids"].numpy()[decisive])
    np.testing.assert_array_equal(
        beam["lengths"].numpy()[decisive, 0], greedy["lengths"].numpy()[decisive]
    )
    np.testing.assert_allclose(beam["log_probs"].numpy()[:, 0], greedy["log_probs"], rtol=1e-5)


def sequence_log_prob(model, context, ids):
    """log P(ids[1:] | context) under full (uncached) teacher forcing."""
    length = int(np.flatnonzero(ids == 3)[0]) + 1 if (ids == 3).any() else len(ids)
    ids = ids[:length][np.newaxis]
    logits = model([context[np.newaxis], ids[:, :-1]], training=False)
    log_probs = tf.nn.log_softmax(logits).numpy()[0]
    return float(sum(log_probs[i, ids[0, i + 1]] for i in range(length - 1))), length - 1


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_search_scores_and_beats_greedy(tokenizers, trained, held_out, alpha):
    fast = FastTranslator(tokenizers, trained, MAX_LENGTH, jit_compile=False)
    greedy = fast.greedy_ids(held_out)
    greedy_scores = greedy["log_probs"] / length_penalty(greedy["lengths"], alpha)
    beam = fast.beam_search_ids(held_out, beam_size=4, alpha=alpha)
    scores = beam["scores"].numpy()
    assert scores.shape == (HELD_OUT, 4)
    assert (scores[:, 0] >= greedy_scores.numpy() - 1e-5).all()
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    # The bookkeeping (cache reordering included) is right: every hypothesis's
    # reported log-probability is what the full model gives its tokens.
    context = fast.source_ids(tf.constant(held_out)).numpy()
    ids = beam["ids"].numpy()
    for row in range(0, HELD_OUT, 3):
        for k in range(4):
            log_prob, length = sequence_log_prob(trained, context[row], ids[row, k])
            assert length == beam["lengths"].numpy()[row, k]
            assert log_prob == pytest.approx(beam["log_probs"].numpy()[row, k], abs=2e-3)
            assert ids[row, k, 0] == 2 and not ids[row, k, length + 1 :].any()


@pytest.mark.slow
def test_beam_search_agrees_across_caches_and_xla(tokenizers, trained, held_out):
    plain = FastTranslator(tokenizers, trained, MAX_LENGTH, jit_compile=False, cache="keys_values")
    xla = FastTranslator(tokenizers, trained, MAX_LENGTH, jit_compile=True, cache="inputs")
    a = plain.beam_search_ids(held_out[:8], beam_size=3, alpha=0.6)
    b = xla.beam_search_ids(held_out[:8], beam_size=3, alpha=0.6)
    # The best hypotheses' scores agree within float32 noise of two computations; their
    # tokens are equal wherever the best beam leads the second by more than that noise
    # (a near-tie between two distinct hypotheses may be ordered either way).
    np.testing.assert_allclose(a["scores"].numpy(), b["scores"].numpy(), atol=1e-4)
    lead = a["scores"].numpy()[:, 0] - a["scores"].numpy()[:, 1]
    clear = np.flatnonzero(lead > 1e-3)
    assert len(clear) >= 6, lead
    np.testing.assert_array_equal(a["ids"].numpy()[clear, 0], b["ids"].numpy()[clear, 0])
    texts = plain.beam_search(held_out[:8], beam_size=3)
    assert texts.shape == (8,) and texts.dtype == tf.string
    best, scores = plain.n_best(held_out[:2], 3)
    assert best.shape == (2, 3) and scores.shape == (2, 3)
    assert best.numpy()[0, 0] == texts.numpy()[0]


@pytest.fixture(scope="module")
def tiny_fast(tokenizers):
    keras.utils.set_random_seed(5)
    model = Transformer(
        **TINY,
        input_vocab_size=tokenizers.pt.get_vocab_size(),
        target_vocab_size=tokenizers.en.get_vocab_size(),
    )
    return FastTranslator(tokenizers, model, max_length=5, jit_compile=False)


def test_batch_shapes_empty_and_odd_inputs(tiny_fast):
    odd = ["", "   ", "Bom dia!", " ".join(["palavra"] * 400), "😀 中文 עברית"]
    auto = FastTranslator(tiny_fast.tokenizers, tiny_fast.transformer, 5)  # XLA
    for decode in (tiny_fast.greedy, tiny_fast.beam_search, auto.greedy, auto.beam_search):
        out = decode(odd)
        assert out.shape == (5,) and out.dtype == tf.string
        assert decode([]).shape == (0,)
        assert decode("Bom dia!").shape == (1,)
    assert tiny_fast.source_ids(tf.constant(odd)).shape[1] == 128  # trimmed to MAX_TOKENS


@pytest.mark.parametrize(
    "call, error, needle",
    [
        (lambda f: f.greedy(tf.constant([1, 2])), TypeError, "dtype int32"),
        (lambda f: f.greedy([["a", "b"]]), ValueError, "shape [batch]"),
        (lambda f: f.greedy(["a"], max_length=0), ValueError, "max_length"),
        (lambda f: f.beam_search(["a"], beam_size=0), ValueError, "beam_size"),
        (lambda f: f.beam_search(["a"], alpha=-1), ValueError, "alpha"),
        (lambda f: f.n_best(["a"], 3, beam_size=2), ValueError, "at least n=3"),
        (lambda f: IncrementalDecoder(f.transformer, cache="kv"), ValueError, "cache must be"),
    ],
)
def test_bad_arguments_are_named(tiny_fast, call, error, needle):
    with pytest.raises(error, match=needle.replace("[", r"\[").replace("]", r"\]")):
        call(tiny_fast)


def test_default_jit_is_xla_eagerly_and_plain_when_traced(tiny_fast):
    auto = FastTranslator(tiny_fast.tokenizers, tiny_fast.transformer, 5)
    assert auto._use_xla() and not tiny_fast._use_xla()
    seen = []

    @tf.function
    def traced():
        seen.append(auto._use_xla())
        return auto.greedy(tf.constant(["Bom dia!"]))

    assert traced().shape == (1,) and seen == [False]


@pytest.mark.slow
def test_decode_benchmark_smoke_run():
    """benchmarks/decode.py runs end to end (tiny sizes; timings are not checked)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "decode.py"
    result = subprocess.run(
        [sys.executable, str(script), "--smoke"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("Device: ")
    for name in (
        "tutorial (tf.function)",
        "greedy kv-cache xla",
        "greedy default",
        "beam4 default",
        "ctranslate2 greedy (1 thread)",  # the dev extra installs ctranslate2
        "ctranslate2 greedy int8 (1 thread)",
        "ctranslate2 beam4 (1 thread)",
    ):
        assert name in result.stdout
    assert "beam4 default time / greedy default time" in result.stdout
    assert "time / greedy default time = " in result.stdout.split("ctranslate2 greedy (")[-1]


def test_mixed_precision_model_decodes_in_float32(tokenizers):
    """A model trained under a bf16 policy (float32 variables) decodes, in float32."""
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = Transformer(**TINY, **TINY_VOCAB)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    context = tf.constant([[5, 6, 7, 8, 0, 0]], tf.int64)
    target = tf.constant([[2, 5, 6, 7]], tf.int64)
    full = tf.cast(model([context, target], training=False), tf.float32).numpy()
    decoder = IncrementalDecoder(model, cache="inputs")
    state, weights = decoder.start(context, 4), decoder.weights()
    logits = []
    for t in range(4):
        step_logits, state = decoder.step(state, target, tf.constant(t), weights)
        assert step_logits.dtype == tf.float32
        logits.append(step_logits.numpy())
    np.testing.assert_allclose(np.stack(logits, axis=1), full, atol=0.05)  # bf16 rounding
