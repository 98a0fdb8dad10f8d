"""Translate and evaluate with a trained model: the `translate` and `evaluate` jobs.

`make_batch_translator` picks the decoder (cached greedy, beam search, or the
tutorial's `Translator`); `translate_all` feeds it sentences in length-sorted
batches; `evaluate_split` translates a corpus split and scores it.
"""

from __future__ import annotations

import tensorflow as tf

from tftransformer._files import RunError
from tftransformer.corpus import Example, load_corpus
from tftransformer.data import MAX_TOKENS
from tftransformer.inference.fast_translator import FastTranslator
from tftransformer.inference.search import DEFAULT_ALPHA, DEFAULT_BEAM_SIZE
from tftransformer.runs.scoring import corpus_scores, published_scores
from tftransformer.translator import Translator, make_translate_fn, print_translation


def make_run_translate_fn(tokenizers, model, max_length, max_input_tokens=MAX_TOKENS):
    """Traced greedy translation; input trimmed to the run's `max_tokens` as in training."""
    translator = Translator(tokenizers, model, max_input_tokens=max_input_tokens)
    return make_translate_fn(translator, max_length)


def _pairs(corpus, split, limit):
    ds = load_corpus(corpus, split)
    if limit is not None:
        ds = ds.take(limit)
    return [Example(pt.decode("utf-8"), en.decode("utf-8")) for pt, en in ds.as_numpy_iterator()]


DECODERS = ("greedy", "beam", "tutorial")


def make_batch_translator(
    tokenizers,
    model,
    decode="greedy",
    max_length=MAX_TOKENS,
    max_input_tokens=MAX_TOKENS,
    beam_size=DEFAULT_BEAM_SIZE,
    alpha=DEFAULT_ALPHA,
    jit_compile=None,
):
    """A function from a list of sentences to their translations (strings).

    `decode` is `greedy` (cached, batched: the tutorial's translations, fast),
    `beam` (cached beam search) or `tutorial` (the tutorial's `Translator`,
    one sentence at a time).
    """
    if decode not in DECODERS:
        raise ValueError(f"decode must be one of {', '.join(DECODERS)}, got {decode!r}")
    if decode == "tutorial":
        translate_fn = make_run_translate_fn(tokenizers, model, max_length, max_input_tokens)
        return lambda batch: [translate_fn(tf.constant(s)).numpy().decode("utf-8") for s in batch]
    options = {} if jit_compile is None else {"jit_compile": jit_compile}
    fast = FastTranslator(
        tokenizers, model, max_length, max_input_tokens=max_input_tokens, **options
    )
    if decode == "greedy":
        run = fast.greedy
    else:
        fast.check_options(None, beam_size, alpha)

        def run(batch):
            return fast.beam_search(batch, beam_size=beam_size, alpha=alpha)

    return lambda batch: [text.decode("utf-8") for text in run(batch).numpy()]


def translate_all(translate_batch, sentences, batch_size=32, progress=None):
    """Translate every sentence, at most `batch_size` at a time, in input order.

    Blank sentences give "" without running the model. Sentences are decoded
    in order of length so that each batch holds similar lengths (less padding,
    rows finishing together); `progress(done, total)` follows each batch.
    """
    results = [""] * len(sentences)
    todo = [i for i, sentence in enumerate(sentences) if sentence.strip()]
    todo.sort(key=lambda i: len(sentences[i]))
    done = len(sentences) - len(todo)
    # Equal-sized batches (no small leftover batch to trace or compile for).
    batches = -(-len(todo) // batch_size)
    size = -(-len(todo) // batches) if batches else batch_size
    for first in range(0, len(todo), size):
        chunk = todo[first : first + size]
        for index, text in zip(chunk, translate_batch([sentences[i] for i in chunk]), strict=True):
            results[index] = text
        done += len(chunk)
        if progress:
            progress(done, len(sentences))
    return results


def evaluate_split(
    model,
    tokenizers,
    corpus,
    split="test",
    limit=None,
    progress=None,
    max_tokens=MAX_TOKENS,
    **decode_options,
):
    """Translate a split and score it: `(scores, examples, hypotheses)`.

    `scores` are `published_scores` (raw references, sacrebleu's signature), with
    the normalized ones of `corpus_scores` under `scores["normalized"]`.

    `max_tokens` (the run's setting) bounds both the input and the translation.
    `decode_options` go to `make_batch_translator` (default: cached greedy).
    """
    translate_and_score = _split_scorer(model, tokenizers, corpus, split, limit, max_tokens,
                                        **decode_options)  # fmt: skip
    scores, rows, hypotheses = translate_and_score(progress=progress)
    scores["normalized"] = corpus_scores(hypotheses, [r.en for r in rows])
    return scores, rows, hypotheses


def _split_scorer(model, tokenizers, corpus, split, limit, max_tokens, **decode_options):
    """A function translating a split with `model`'s current weights and scoring it:
    `(published_scores, rows, hypotheses)`. The split is read and the translator built
    once, here; the translator reads the model's variables each time it runs."""
    rows = _pairs(corpus, split, limit)
    translate_batch = make_batch_translator(
        tokenizers, model, max_length=max_tokens, max_input_tokens=max_tokens, **decode_options
    )
    sources, references = [r.pt for r in rows], [r.en for r in rows]

    def translate_and_score(progress=None):
        hypotheses = translate_all(translate_batch, sources, progress=progress)
        return published_scores(hypotheses, references), rows, hypotheses

    return translate_and_score


def validation_chrf(model, tokenizers, settings):
    """A scorer for `keep_best`: a function of no arguments giving the chrF (raw references)
    of `model`'s greedy translations of the run's validation split, with whatever weights
    the model holds at that call. The split and the translator are prepared at the first
    call (a run with one candidate never scores) and serve every later one."""
    prepared = []

    def score():
        if not prepared:
            prepared.append(_split_scorer(model, tokenizers, settings.corpus, "validation",
                                          settings.limit, settings.max_tokens))  # fmt: skip
        return prepared[0]()[0]["chrf"]

    return score


def translate_run(run, sentences, max_length, batch_size=32, progress=None, **decode_options):
    """The `translate` job: `sentences` translated by a loaded `Run`, inputs trimmed to
    the run's `max_tokens` as in its training (read here, from the run, not by callers)."""
    translate_batch = make_batch_translator(
        run.tokenizers, run.model, max_length=max_length, max_input_tokens=run.max_tokens,
        **decode_options,
    )  # fmt: skip
    return translate_all(translate_batch, sentences, batch_size, progress=progress)


def evaluate_run(run, corpus=None, split="test", limit=None, progress=None, **decode_options):
    """The `evaluate` job: `evaluate_split` for a loaded `Run`, on its own corpus unless
    `corpus` is given, with the run's `max_tokens`."""
    return evaluate_split(run.model, run.tokenizers, corpus or run.settings.corpus, split,
                          limit=limit, progress=progress, max_tokens=run.max_tokens,
                          **decode_options)  # fmt: skip


def translate_litert(run_dir, sentences, quantization="float32") -> list[str]:
    """`translate --engine litert`: `sentences` translated by the run's exported `.tflite`
    file (`RUN/export/litert/<quantization>/translator.tflite`) on the LiteRT interpreter;
    the model itself is not loaded. `run_dir` is a `RunDir`."""
    from tftransformer.inference.litert import LiteRTError, LiteRTTranslator
    from tftransformer.runs.export import litert_path

    path = litert_path(run_dir, quantization)
    if not path.is_file():
        raise RunError(f"{path}: no LiteRT export yet; run `tftransformer export "
                       f"{run_dir.path} --format litert` first")  # fmt: skip
    try:
        return LiteRTTranslator(path).translate(sentences)
    except LiteRTError as error:
        raise RunError(str(error)) from None


def print_examples(rows, hypotheses):
    for row, hypothesis in zip(rows, hypotheses, strict=True):
        print_translation(row.pt, hypothesis, row.en)
        print()


def evaluate_after_training(model, tokenizers, settings, progress=None) -> dict:
    """`train`'s closing evaluation of the test split: greedy decoding as in the tutorial,
    then beam search (`DEFAULT_BEAM_SIZE`, `DEFAULT_ALPHA`).

    Returns `greedy` and `beam` scores (see `evaluate_split`), the first test `rows` and
    their greedy `hypotheses`, for the command line to print.
    """
    common = dict(limit=settings.limit, max_tokens=settings.max_tokens)
    greedy, rows, hypotheses = evaluate_split(
        model, tokenizers, settings.corpus, "test", progress=progress, **common
    )
    beam, _rows, _beams = evaluate_split(
        model, tokenizers, settings.corpus, "test", decode="beam", **common
    )
    return {"greedy": greedy, "beam": beam, "rows": rows, "hypotheses": hypotheses}
