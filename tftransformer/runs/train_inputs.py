"""A training run's inputs: its tokenizers (learned once, then reused) and its batches.

Part of the training job (`tftransformer.runs.train`): the tutorial's "Set up the
tokenizer" and "Set up a data pipeline with tf.data" steps, for the settings of a run.
"""

from __future__ import annotations

import tempfile

from tftransformer._files import recover_dir
from tftransformer.corpus import load_corpus
from tftransformer.data import make_batches, make_bucketed_batches
from tftransformer.runs.paths import RunDir
from tftransformer.runs.settings import TrainSettings
from tftransformer.runs.train_options import bert_params
from tftransformer.tokenizers import build_tokenizers, load_tokenizers, save_tokenizers
from tftransformer.vocabularies.sentencepiece_model import build_sentencepiece_tokenizers
from tftransformer.vocabularies.shared_wordpiece import build_shared_wordpiece_tokenizers


def take(ds, limit):
    """The first `limit` elements of `ds` (`--limit`), or all of them."""
    return ds if limit is None else ds.take(limit)


def count_batches(batches) -> int:
    """How many batches a (finite) dataset yields: its cardinality, or one pass to count."""
    known = int(batches.cardinality())
    if known >= 0:
        return known
    return int(batches.reduce(0, lambda count, _batch: count + 1))


def prepare_tokenizers(run: RunDir, settings: TrainSettings, log=print):
    """Load RUN/tokenizers/, or learn them from the train split and save them there."""
    # save_tokenizers renames a finished SavedModel into place, so the directory
    # existing (after undoing a cut-short replacement) means it is complete.
    if recover_dir(run.tokenizers).exists():
        log(f"Reusing tokenizers from {run.tokenizers}")
        return load_tokenizers(run.tokenizers)
    vocabularies = "one shared pt+en vocabulary" if settings.shared_vocabulary else "pt and en"
    log(f"Building {settings.tokenizer} tokenizers ({vocabularies}) from {settings.corpus} "
        "(train split) ...")  # fmt: skip
    pairs = take(load_corpus(settings.corpus, "train"), settings.limit)
    with tempfile.TemporaryDirectory(prefix="tftransformer-vocab-") as vocab_dir:
        # The vocab (or model) files are copied into the SavedModel as assets.
        if settings.tokenizer == "sentencepiece":
            built = build_sentencepiece_tokenizers(
                pairs, settings.vocab_size, vocab_dir, shared=settings.shared_vocabulary
            )
        else:
            # Deviation from tutorial (opt-in, --shared-vocabulary): one WordPiece vocabulary.
            build = build_tokenizers
            if settings.shared_vocabulary:
                build = build_shared_wordpiece_tokenizers
            built = build(
                pairs,
                settings.vocab_size,
                vocab_dir=vocab_dir,
                min_token_count=settings.min_token_count,
                bert_tokenizer_params=bert_params(settings.tokenizer),
            )
        save_tokenizers(built, run.tokenizers)
    return load_tokenizers(run.tokenizers)


def make_batches_for(settings: TrainSettings, tokenizers, pairs, seed=None):
    """Batches of `pairs` as the settings ask: shuffled by `seed`, or in order when None."""
    common = dict(batch_size=settings.batch_size, max_tokens=settings.max_tokens)
    if settings.bucket:
        batcher = make_bucketed_batches
        common.update(tokens_per_batch=settings.tokens_per_batch)
    else:
        batcher = make_batches
    if seed is None:
        return batcher(pairs, tokenizers, shuffle=False, **common)
    return batcher(pairs, tokenizers, seed=seed, **common)
